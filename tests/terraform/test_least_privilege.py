"""Each identity holds what its code calls, no more (issue 25), checked over the parsed HCL."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from .hcl import TERRAFORM, all_module_dirs, load, one
from .test_wiring import walk

FUNCTIONS = load(TERRAFORM / "modules" / "functions")
TRITON = load(TERRAFORM / "modules" / "triton")
SOURCE = TERRAFORM.parent / "functions" / "imagen"
RESULTS_ONLY = 'resource.name.startsWith("projects/_/buckets/${var.bucket}/objects/${var.result_prefix}")'

# Every custom role and its permissions: a new role, or a permission more, is a decision to make here.
CUSTOM_ROLES = {
    "signs_blobs": ["iam.serviceAccounts.signBlob"],
    "mints_id_tokens": ["iam.serviceAccounts.getOpenIdToken"],
    "lists_objects": ["storage.objects.list"],
    "gets_objects": ["storage.objects.get"],
}


def custom_role(name: str) -> str:
    return f"${{google_project_iam_custom_role.{name}.name}}"


def api_env() -> dict[str, Any]:
    """The API's own environment on top of common_env (the object literal merged in)."""
    api = FUNCTIONS.resource("google_cloudfunctions2_function", "api")
    return FUNCTIONS.env(one(one(api["service_config"])["environment_variables"]))


def storage_calls(path: Path, receiver: str, function: str | None = None) -> set[str]:
    """Methods called on `receiver` (e.g. svc.storage) in a source file, or in one function of it."""
    tree: ast.AST = ast.parse(path.read_text())
    if function is not None:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and ast.unparse(node.func.value) == receiver
    }


def test_no_binding_anywhere_grants_token_creator() -> None:
    for folder in all_module_dirs():
        for key, value in walk(load(folder).files):
            assert "serviceAccountTokenCreator" not in str(value), f"{folder}: {key} = {value}"


def test_custom_roles_hold_exactly_their_permissions() -> None:
    roles = FUNCTIONS.resources("google_project_iam_custom_role")
    assert {name: one(body["permissions"]) for (_, name), body in roles.items()} == {
        name: one(permissions) for name, permissions in CUSTOM_ROLES.items()
    }
    ids = [one(body["role_id"]) for body in roles.values()]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[a-zA-Z0-9_.]{3,64}", i) for i in ids)


def test_the_api_signs_urls_with_sign_blob_alone_on_its_own_account() -> None:
    signs = FUNCTIONS.resource("google_service_account_iam_member", "api_signs_urls")
    assert one(signs["role"]) == custom_role("signs_blobs")
    assert one(signs["service_account_id"]) == "${google_service_account.api.name}"  # on itself
    assert one(signs["member"]) == "serviceAccount:${google_service_account.api.email}"  # for itself
    bound = [name for (_, name), body in FUNCTIONS.resources().items() if body.get("role") == signs["role"]]
    assert bound == ["api_signs_urls"]
    agent = FUNCTIONS.resource("google_service_account_iam_member", "pubsub_agent_mints_tokens")
    assert one(agent["role"]) == custom_role("mints_id_tokens")  # push deliveries' OIDC tokens
    assert one(agent["service_account_id"]) == "${google_service_account.invoker.name}"
    assert "iamcredentials.googleapis.com" in one(load(TERRAFORM).locals()["apis"])


def test_the_reconciler_lists_the_bucket_and_gets_only_results() -> None:
    """It lists (each object's metadata comes with the listing) and gets result names only."""
    grants = {
        name: body
        for (t, name), body in FUNCTIONS.resources().items()
        if t.startswith("google_storage_bucket_iam")
        and "google_service_account.reconciler" in one(body["member"])
    }
    assert set(grants) == {"reconciler_lists_objects", "reconciler_reads_results"}
    lists, gets = grants["reconciler_lists_objects"], grants["reconciler_reads_results"]
    assert one(lists["role"]) == custom_role("lists_objects") and "condition" not in lists
    assert one(gets["role"]) == custom_role("gets_objects")
    assert one(one(gets["condition"])["expression"]) == RESULTS_ONLY

    # What the grants follow from: the scan's storage calls, and what each calls on the client.
    reconciler = SOURCE / "handlers" / "reconciler.py"
    assert storage_calls(reconciler, "svc.storage") == {"uploads", "has_result"}
    objects = SOURCE / "cloud" / "objects.py"
    assert storage_calls(objects, "self.client", "uploads") == {"list_blobs"}  # storage.objects.list
    assert storage_calls(objects, "self.client.bucket(upload.bucket)", "has_result") == {"get_blob"}
    for shared in ("flow/intake.py", "flow/completion.py"):  # queue_upload, announce: no storage at all
        assert "storage" not in {
            n.attr for n in ast.walk(ast.parse((SOURCE / shared).read_text())) if isinstance(n, ast.Attribute)
        }, shared


def test_triton_reads_only_its_images_repository() -> None:
    project_roles = {one(b["role"]) for b in TRITON.resources("google_project_iam_member").values()}
    assert not any(r.startswith("roles/artifactregistry") for r in project_roles), project_roles
    pulls = TRITON.resource("google_artifact_registry_repository_iam_member", "triton_pulls_image")
    assert one(pulls["role"]) == "roles/artifactregistry.reader"
    assert one(pulls["member"]) == "serviceAccount:${google_service_account.triton.email}"
    for part in ("project", "location", "repository"):
        assert one(pulls[part]) == f"${{local.registry.{part}}}"
    registry = TRITON.locals()["registry"]
    assert one(TRITON.locals()["image_path"]) == '${split("/", var.image)}'
    assert registry == {
        "location": '${trimsuffix(local.image_path[0], "-docker.pkg.dev")}',
        "project": "${local.image_path[1]}",
        "repository": "${local.image_path[2]}",
    }
    # var.image must have that shape, or the grant would name no repository.
    condition = one(one(TRITON.named("variable")["image"]["validation"])["condition"])
    pattern = re.search(r'regex\("((?:[^"\\]|\\.)*)"', condition)
    assert pattern
    accepts = re.compile(pattern.group(1).replace("\\\\", "\\"))
    assert accepts.match("us-central1-docker.pkg.dev/my-project/imagen/triton:1")
    for other in ("nvcr.io/nvidia/tritonserver:24.01-py3", "gcr.io/my-project/triton:1", "triton:1"):
        assert not accepts.match(other), other


def test_the_connector_and_triton_port_are_the_workers_alone() -> None:
    with_connector = {
        name
        for (_, name), body in FUNCTIONS.resources("google_cloudfunctions2_function").items()
        if "vpc_connector" in one(body["service_config"])
    }
    assert with_connector == {"on_job"}
    api = one(FUNCTIONS.resource("google_cloudfunctions2_function", "api")["service_config"])
    assert "vpc_connector" not in api and "vpc_connector_egress_settings" not in api
    assert api_env()["TRITON_URL"] == ""  # /health does not ask Triton in the cloud

    connector = TRITON.resource("google_vpc_access_connector", "functions")
    assert one(connector["ip_cidr_range"]) == "${var.connector_cidr}"
    firewalls = TRITON.resources("google_compute_firewall")
    assert list(firewalls) == [("google_compute_firewall", "triton_http")]  # no other rule opens Triton
    rule = firewalls[("google_compute_firewall", "triton_http")]
    assert rule["source_ranges"] == ["${var.connector_cidr}"]
    assert one(one(rule["allow"])["ports"]) == "8000" and one(rule["direction"]) == "INGRESS"


def test_the_internal_load_balancer_admits_the_connector_only() -> None:
    service = TRITON.resource("kubernetes_service_v1", "triton")
    spec = one(service["spec"])
    assert one(spec["type"]) == "LoadBalancer"
    assert spec["load_balancer_source_ranges"] == ["${var.connector_cidr}"]


def test_the_api_knows_its_callers_and_their_jobs_are_indexed() -> None:
    env = api_env()
    assert env["API_AUTH"] == "platform"
    assert env["API_OPERATORS"] == '${join(",", var.api_operators)}'
    operators = FUNCTIONS.named("variable")["api_operators"]
    assert one(operators["type"]) == "${list(string)}" and one(operators["default"]) == []
    assert "validation" in operators  # plain emails, as the platform names its callers

    root = load(TERRAFORM)
    variable = root.named("variable")["api_operators"]
    assert one(variable["type"]) == "${list(string)}" and one(variable["default"]) == []
    assert one(variable["description"]) == (
        "Identities (emails) that may read every job through the HTTP API; "
        "others read only the jobs they created."
    )
    assert one(root.named("module")["functions"]["api_operators"]) == "${var.api_operators}"

    # the owner's indexes: tests/terraform/test_firestore.py (one per query shape)


def test_the_api_may_read_the_results_it_signs_links_to() -> None:
    """A V4 signed URL grants what its signer may do: the API's result links need objects.get
    under results/, and nothing above its model prefixes besides."""
    grants = {
        name: body
        for (t, name), body in FUNCTIONS.resources().items()
        if t.startswith("google_storage_bucket_iam") and "google_service_account.api" in one(body["member"])
    }
    assert set(grants) == {"api_writes_inputs", "api_reads_results"}
    reads = grants["api_reads_results"]
    assert one(reads["role"]) == custom_role("gets_objects")
    assert one(one(reads["condition"])["expression"]) == RESULTS_ONLY
    assert "sign_get" in storage_calls(SOURCE / "handlers" / "api.py", "call.svc.storage")
