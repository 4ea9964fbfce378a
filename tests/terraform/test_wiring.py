"""The Terraform wiring, checked over the parsed HCL (no terraform binary or cloud here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagen.core.models import MODELS

from .hcl import TERRAFORM, all_module_dirs, load, one

MODULES = ["storage", "messaging", "functions", "triton", "firestore"]
PRIMITIVE = {"roles/owner", "roles/editor", "roles/viewer"}
PUBLIC = {"allUsers", "allAuthenticatedUsers"}


def walk(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Every (key, scalar) pair anywhere in a parsed tree."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v, key)
    else:
        yield key, value


@pytest.mark.parametrize("folder", all_module_dirs(), ids=lambda p: str(p.relative_to(TERRAFORM)) or "root")
def test_every_file_parses_and_every_variable_and_output_is_documented(folder: Path) -> None:
    module = load(folder)
    assert module.files
    for name, body in module.named("variable").items():
        assert "type" in body, f"{folder.name}: variable {name} has no type"
        assert one(body.get("description", "")).strip(), f"{folder.name}: variable {name} has no description"
    for name, body in module.named("output").items():
        assert one(body.get("description", "")).strip(), f"{folder.name}: output {name} has no description"


@pytest.mark.parametrize("name", MODULES + ["."])
def test_modules_have_the_standard_files_and_pin_the_provider(name: str) -> None:
    folder = TERRAFORM / "modules" / name if name != "." else TERRAFORM
    for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (folder / f).exists(), f"{folder}/{f} missing"
    tf = one(load(folder).files["versions.tf"]["terraform"])
    google = one(one(tf["required_providers"])["google"])
    assert google["source"] == "hashicorp/google"
    assert re.fullmatch(r"(~>|=) ?\d+\.\d+(\.\d+)?", google["version"]), google["version"]


def test_examples_call_the_root_module() -> None:
    for ex in ("vm", "gke"):
        module = load(TERRAFORM / "examples" / ex)
        imagen = module.named("module")["imagen"]
        assert one(imagen["source"]) == "../.."
        assert one(imagen["triton_mode"]) == ex


def test_root_deploys_every_model() -> None:
    assert one(load(TERRAFORM).locals()["models"]) == list(MODELS)


def test_each_model_has_a_topic_a_dead_lettered_subscription_and_a_worker() -> None:
    messaging = load(TERRAFORM / "modules" / "messaging")
    topic = messaging.resource("google_pubsub_topic", "jobs")
    assert one(topic["for_each"]) == "${toset(var.models)}"
    assert one(topic["name"]) == "imagen-${each.key}"
    sub = messaging.resource("google_pubsub_subscription", "jobs")
    assert one(sub["for_each"]) == "${toset(var.models)}"
    assert one(sub["topic"]) == "${google_pubsub_topic.jobs[each.key].id}"
    assert one(one(sub["push_config"])["push_endpoint"]) == "${var.job_push_endpoints[each.key]}"
    assert one(one(sub["dead_letter_policy"])["dead_letter_topic"]) == "${google_pubsub_topic.dead_letter.id}"
    assert "retry_policy" in sub
    assert one(messaging.named("variable")["max_delivery_attempts"]["default"]) == 5
    assert ("google_pubsub_topic", "events") in messaging.resources()
    dlq = messaging.resource("google_pubsub_subscription", "dead_letter")
    assert one(dlq["topic"]) == "${google_pubsub_topic.dead_letter.id}"

    functions = load(TERRAFORM / "modules" / "functions")
    job = functions.resource("google_cloudfunctions2_function", "on_job")
    assert one(job["for_each"]) == "${toset(var.models)}"
    svc = one(job["service_config"])
    assert "MODEL_NAME = each.key" in one(svc["environment_variables"])
    assert one(one(job["build_config"])["entry_point"]) == "on_job"
    assert one(functions.named("variable")["worker_concurrency"]["default"]) > 1
    assert one(svc["vpc_connector"]) == "${var.vpc_connector}"

    root = load(TERRAFORM)
    wiring = root.named("module")["messaging"]
    assert one(wiring["job_push_endpoints"]) == "${module.functions.job_function_uris}"
    assert one(wiring["dead_letter_endpoint"]) == "${module.functions.dead_letter_function_uri}"


def test_upload_function_fires_on_object_finalized_in_the_bucket() -> None:
    functions = load(TERRAFORM / "modules" / "functions")
    upload = functions.resource("google_cloudfunctions2_function", "on_upload")
    trigger = one(upload["event_trigger"])
    assert one(trigger["event_type"]) == "google.cloud.storage.object.v1.finalized"
    assert one(trigger["retry_policy"]) == "RETRY_POLICY_RETRY"
    assert one(one(trigger["event_filters"])["attribute"]) == "bucket"
    assert one(one(upload["build_config"])["entry_point"]) == "on_upload"
    dead = functions.resource("google_cloudfunctions2_function", "on_dead_letter")
    assert one(one(dead["build_config"])["entry_point"]) == "on_dead_letter"


def test_function_source_is_keyed_on_the_archive_md5() -> None:
    functions = load(TERRAFORM / "modules" / "functions")
    obj = functions.resource("google_storage_bucket_object", "source")
    assert "data.archive_file.source.output_md5" in one(obj["name"])


def test_no_primitive_roles_and_no_public_members_anywhere() -> None:
    for folder in all_module_dirs():
        module = load(folder)
        for key, value in walk(module.files):
            if key == "role":
                assert value not in PRIMITIVE, f"{folder}: primitive role {value}"
            if key in ("member", "members"):
                assert not any(p in str(value) for p in PUBLIC), f"{folder}: public member {value}"


def test_each_service_account_gets_only_its_roles() -> None:
    functions = load(TERRAFORM / "modules" / "functions")
    roles = {(name, one(body["role"])) for (t, name), body in functions.resources().items() if "role" in body}
    assert ("worker_reads_inputs", "roles/storage.objectViewer") in roles
    lister = "${google_project_iam_custom_role.lists_objects.name}"  # test_least_privilege.py
    assert ("reconciler_lists_objects", lister) in roles  # scans for missing jobs
    assert ("worker_writes_results", "roles/storage.objectUser") in roles
    reads = functions.resource("google_storage_bucket_iam_member", "worker_reads_inputs")
    writes = functions.resource("google_storage_bucket_iam_member", "worker_writes_results")
    assert one(one(reads["condition"])["expression"]) == "${local.input_prefix_condition}"
    condition = one(functions.locals()["input_prefix_condition"])
    assert "startsWith" in condition and "for m in var.models" in condition  # only the model prefixes
    assert "var.result_prefix" in one(one(writes["condition"])["expression"])  # only results/
    project_roles = {
        one(b["role"]) for (t, _), b in functions.resources().items() if t == "google_project_iam_member"
    }
    assert project_roles <= {"roles/datastore.user", "roles/eventarc.eventReceiver", "roles/pubsub.publisher"}


def test_bucket_is_never_public() -> None:
    storage = load(TERRAFORM / "modules" / "storage")
    bucket = storage.resource("google_storage_bucket", "images")
    assert one(bucket["uniform_bucket_level_access"]) is True
    assert one(bucket["public_access_prevention"]) == "enforced"
    functions = load(TERRAFORM / "modules" / "functions")
    source = functions.resource("google_storage_bucket", "source")
    assert one(source["public_access_prevention"]) == "enforced"


def test_triton_is_reachable_only_inside_the_vpc() -> None:
    triton = load(TERRAFORM / "modules" / "triton")
    vm = triton.resource("google_compute_instance", "triton")
    assert "access_config" not in one(vm["network_interface"])
    firewall = triton.resource("google_compute_firewall", "triton_http")
    ranges = one(firewall["source_ranges"])
    assert "0.0.0.0/0" not in ranges
    assert ranges == "${var.connector_cidr}"  # the workers' connector alone (test_least_privilege.py)
    svc = triton.resource("kubernetes_service_v1", "triton")
    annotations = one(one(svc["metadata"])["annotations"])
    assert annotations["networking.gke.io/load-balancer-type"] == "Internal"
    mode = triton.named("variable")["mode"]
    assert "validation" in mode


def test_the_reconciler_runs_on_a_schedule_at_the_lease_ratio() -> None:
    """Cloud Scheduler → imagen-reconcile → push → on_reconcile, every minute: half the job lease,
    as the local stack's 12 s is half its 24 s lease."""
    messaging = load(TERRAFORM / "modules" / "messaging")
    job = messaging.resource("google_cloud_scheduler_job", "reconcile")
    assert one(one(job["pubsub_target"])["topic_name"]) == "${google_pubsub_topic.reconcile.id}"
    assert one(messaging.named("variable")["reconcile_schedule"]["default"]) == "* * * * *"
    sub = messaging.resource("google_pubsub_subscription", "reconcile")
    assert one(sub["topic"]) == "${google_pubsub_topic.reconcile.id}"
    assert one(one(sub["push_config"])["push_endpoint"]) == "${var.reconcile_endpoint}"

    functions = load(TERRAFORM / "modules" / "functions")
    fn = functions.resource("google_cloudfunctions2_function", "on_reconcile")
    assert one(one(fn["build_config"])["entry_point"]) == "on_reconcile"
    assert "MAX_ATTEMPTS" in functions.locals()["common_env"]
    assert functions.locals()["common_env"]["BUCKET"] == "${var.bucket}"  # scanned for objects with no job
    root = load(TERRAFORM).named("module")
    assert one(root["messaging"]["reconcile_endpoint"]) == "${module.functions.reconcile_function_uri}"
    assert one(root["functions"]["max_attempts"]) == "${var.max_delivery_attempts}"


def test_grants_are_narrowed_to_what_each_reads_and_writes() -> None:
    """on_upload reads no object; Firestore grants reach only the jobs database; Cloud Storage's
    agent publishes only to Eventarc's transport topics."""
    functions = load(TERRAFORM / "modules" / "functions")
    upload_members = [
        body
        for (t, _), body in functions.resources().items()
        if t.startswith("google_storage_bucket_iam")
        and "google_service_account.upload" in one(body["member"])
    ]
    assert upload_members == []
    firestore = functions.resource("google_project_iam_member", "firestore_users")
    expression = one(one(firestore["condition"])["expression"])
    assert expression == 'resource.name == "projects/${var.project_id}/databases/${var.firestore_database}"'
    agent = functions.resource("google_project_iam_member", "gcs_agent_publishes")
    assert one(one(agent["condition"])["expression"]) == (
        'resource.name.startsWith("projects/${var.project_id}/topics/eventarc-")'
    )
    unconditioned = [
        name
        for (t, name), body in functions.resources().items()
        if t == "google_project_iam_member" and "condition" not in body
    ]
    assert unconditioned == ["invoker_receives_events"]  # Eventarc's receiver role is project-level only


def test_bucket_access_is_logged_as_the_skip_reason_says() -> None:
    storage = load(TERRAFORM / "modules" / "storage")
    audit = storage.resource("google_project_iam_audit_config", "storage")
    assert one(audit["service"]) == "storage.googleapis.com"
    assert {one(c["log_type"]) for c in audit["audit_log_config"]} == {"DATA_READ", "DATA_WRITE"}
    assert one(storage.named("variable")["data_access_logs"]["default"]) is True


def test_gke_mode_is_reachable_by_its_operator_and_scraped_for_the_autoscaler() -> None:
    import yaml

    triton = load(TERRAFORM / "modules" / "triton")
    cluster = triton.resource("google_container_cluster", "triton")
    networks = one(cluster["master_authorized_networks_config"])
    assert one(one(networks["dynamic"])["cidr_blocks"]["for_each"]) == "${var.authorized_networks}"
    assert (
        one(load(TERRAFORM).named("module")["triton"]["authorized_networks"])
        == "${var.gke_authorized_networks}"
    )
    monitor = yaml.safe_load((TERRAFORM / "modules" / "triton" / "k8s" / "podmonitoring.yaml").read_text())
    deployment = triton.resource("kubernetes_deployment_v1", "triton")
    pod_labels = one(one(one(one(deployment["spec"])["template"])["metadata"])["labels"])
    namespace = one(one(triton.resource("kubernetes_namespace_v1", "imagen")["metadata"])["name"])
    assert monitor["kind"] == "PodMonitoring" and monitor["metadata"]["namespace"] == namespace
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ports = {
        one(p["container_port"])
        for p in one(one(one(one(deployment["spec"])["template"])["spec"])["container"])["port"]
    }
    assert monitor["spec"]["endpoints"][0]["port"] in ports  # Triton's metrics port, 8002


def test_the_api_is_an_http_function_behind_iam_with_no_public_invoker() -> None:
    functions = load(TERRAFORM / "modules" / "functions")
    api = functions.resource("google_cloudfunctions2_function", "api")
    assert one(one(api["build_config"])["entry_point"]) == "api"
    assert "event_trigger" not in api  # HTTP: called directly, with an identity token
    service = one(api["service_config"])
    assert one(service["service_account_email"]) == "${google_service_account.api.email}"
    invokers = functions.resource("google_cloud_run_service_iam_member", "api_invokers")
    assert (
        one(invokers["for_each"]) == "${toset(var.api_invokers)}"
        and one(invokers["role"]) == "roles/run.invoker"
    )
    variable = functions.named("variable")["api_invokers"]
    assert one(variable["default"]) == [] and "allUsers" in one(one(variable["validation"])["condition"])
    writes = functions.resource("google_storage_bucket_iam_member", "api_writes_inputs")
    assert (
        one(one(writes["condition"])["expression"]) == "${local.input_prefix_condition}"
    )  # model prefixes only
    signs = functions.resource("google_service_account_iam_member", "api_signs_urls")
    assert one(signs["service_account_id"]) == "${google_service_account.api.name}"  # itself, no other
    root = load(TERRAFORM)
    assert one(root.named("module")["functions"]["api_invokers"]) == "${var.api_invokers}"
    assert "api_url" in root.named("output")


def test_workers_get_their_time_plan_and_wait_settings_from_the_root() -> None:
    """The root's variables reach every on_job function's environment; the time limit stays
    under the function's timeout (a precondition: variable validations cannot compare two
    variables before Terraform 1.9, and the root allows 1.5); the wait horizon fits the job
    messages' retention."""
    functions = load(TERRAFORM / "modules" / "functions")
    job = functions.resource("google_cloudfunctions2_function", "on_job")
    env = one(one(job["service_config"])["environment_variables"])
    assert "local.common_env" in env and "local.worker_env" in env
    found = functions.locals()
    plan_env, worker_env, common_env = found["plan_env"], found["worker_env"], found["common_env"]
    wired = {
        "FUNCTION_TIMEOUT_S": "var.worker_timeout_seconds",
        "JOB_TIME_LIMIT_S": "var.job_time_limit_seconds",
        "TILE_SECONDS": "var.tile_seconds",
    }
    for name, variable in wired.items():
        assert variable in plan_env[name], name
    # the workers get the plan's settings and their own; the HTTP API plans with the same ones
    assert worker_env.startswith("${merge(local.plan_env, {") and "var.triton_probe_seconds" in worker_env
    api = functions.resource("google_cloudfunctions2_function", "api")
    assert "local.plan_env" in one(one(api["service_config"])["environment_variables"])
    assert "var.wait_horizon_seconds" in common_env["WAIT_HORIZON_S"]  # the dead-letter handler too
    assert one(one(job["service_config"])["timeout_seconds"]) == "${var.worker_timeout_seconds}"

    precondition = one(one(job["lifecycle"])["precondition"])
    assert (
        one(precondition["condition"]) == "${var.job_time_limit_seconds <= var.worker_timeout_seconds - 150}"
    )
    variables = functions.named("variable")
    assert one(variables["job_time_limit_seconds"]["default"]) < one(
        variables["worker_timeout_seconds"]["default"]
    )
    for name in ("job_time_limit_seconds", "wait_horizon_seconds", "triton_probe_seconds", "tile_seconds"):
        assert "validation" in variables[name], name
    subscription = load(TERRAFORM / "modules" / "messaging").resource("google_pubsub_subscription", "jobs")
    retention_s = int(one(subscription["message_retention_duration"]).removesuffix("s"))
    horizon = one(one(variables["wait_horizon_seconds"]["validation"])["condition"])
    assert f"var.wait_horizon_seconds <= {retention_s}" in horizon  # a job's message outlives its wait
    assert one(variables["wait_horizon_seconds"]["default"]) <= retention_s

    root = load(TERRAFORM)
    wiring = root.named("module")["functions"]
    for name in ("job_time_limit_seconds", "wait_horizon_seconds", "triton_probe_seconds", "tile_seconds"):
        assert one(wiring[name]) == f"${{var.{name}}}", name
        assert name in root.named("variable"), name


def test_an_alert_fires_when_workers_have_found_triton_down_for_minutes() -> None:
    monitoring = load(TERRAFORM / "modules" / "monitoring")
    metric = monitoring.resource("google_logging_metric", "service_down")
    assert one(metric["name"]) == "imagen_service_down"
    assert one(metric["filter"]) == 'resource.type="cloud_run_revision" AND jsonPayload.event="service_down"'
    labels = one(one(metric["metric_descriptor"])["labels"])
    assert one(labels["key"]) == "service" and "service" in one(metric["label_extractors"])

    _, query, hold_s, doc = monitoring.locals()["alerts"]["triton_down"]
    assert "user_imagen_service_down" in query and 'service="triton"' in query
    assert "unless" in query and "user_imagen_service_up" in query  # seen down, and not seen back
    up = monitoring.resource("google_logging_metric", "service_up")
    assert one(up["filter"]) == 'resource.type="cloud_run_revision" AND jsonPayload.event="service_up"'
    assert hold_s == "${var.triton_down_alert_s}"
    variable = monitoring.named("variable")["triton_down_alert_s"]
    assert one(variable["default"]) == 300 and "% 60 == 0" in one(one(variable["validation"])["condition"])
    for needed in (
        "no attempt is spent",
        "WAIT_HORIZON_S",
        "/v2/health/ready",
        "service_down",
        "`error`",
        "wait_horizon_seconds",
        "waited ... for",
    ):
        assert needed in doc, needed
    policy = monitoring.resource("google_monitoring_alert_policy", "alerts")
    assert "${google_logging_metric.service_down}" in one(policy["depends_on"])

    root = load(TERRAFORM)
    wiring = root.named("module")["monitoring"]
    assert one(wiring["triton_down_alert_s"]) == "${var.triton_down_alert_s}"
    assert one(wiring["wait_horizon_seconds"]) == "${var.wait_horizon_seconds}"
