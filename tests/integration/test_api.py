"""The HTTP API's handler as functions-framework serves it (in-process), against the real
emulators; the running stack and a real HTTP client are in tests/system/test_api.py."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from functions_framework import create_app

from emulators.stack import Stack
from imagen.core import identity
from imagen.core.errors import BadInput, NotAnImage
from imagen.core.names import object_name
from imagen.image import imaging

from .conftest import SAMPLE, Harness
from .test_handlers import MAIN, app_env  # noqa: F401  (the fixture)

KEY = "integration-key-" + "k" * 32
OPERATOR = "ops@example.com"


def token(email: str, key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {identity.mint_local(email, key)}"}


class Client:
    """Flask's test client, as one caller (its bearer token on every request)."""

    def __init__(self, raw: Any, email: str) -> None:
        self.raw, self.headers = raw, token(email)

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.raw, method)
        return lambda *a, **kw: call(*a, headers={**self.headers, **kw.pop("headers", {})}, **kw)


@pytest.fixture
def api_env(app_env: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:  # noqa: F811
    for key, value in {"BUCKET": app_env.s.bucket, "API_AUTH": "local", "API_LOCAL_KEY": KEY}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("API_OPERATORS", OPERATOR)
    return app_env


@pytest.fixture
def raw(api_env: Stack) -> Any:
    return create_app("api", MAIN, "http").test_client()


@pytest.fixture
def client(raw: Any) -> Client:
    return Client(raw, "alice@example.com")


def form(data: bytes | None, name: str = "cat.jpg", **fields: str) -> dict[str, Any]:
    body: dict[str, Any] = dict(fields)
    if data is not None:
        body["file"] = (io.BytesIO(data), name, "image/jpeg")
    return body


def test_an_upload_is_stored_under_the_model_prefix_with_its_job(client: Any, harness: Harness) -> None:
    resp = client.post("/api/v1/images/enhance", data=form(SAMPLE.read_bytes(), quality="70"))
    assert resp.status_code == 202, resp.json
    body = resp.json
    name = object_name(body["object"])
    blob = harness.bucket.get_blob(name)
    assert name.startswith("enhance/api/")
    assert blob.metadata == {"imagen-quality": "70", "imagen-owner": "alice@example.com"}
    job = client.get(body["status_url"]).json
    assert job["status"] == "queued" and job["options"] == {"imagen-quality": "70"}
    assert client.get("/api/v1/jobs", query_string={"object": name}).json["job_id"] == body["job_id"]


@pytest.mark.parametrize(
    ("path", "data", "status", "error"),
    [
        ("/api/v1/images/nope", form(b"x"), 404, "unknown model 'nope'"),
        ("/api/v1/images/enhance", form(None), 400, "no file"),
        ("/api/v1/images/enhance", form(b"%PDF-1.7 ...", "a.pdf"), 415, "looks like a PDF document"),
        ("/api/v1/images/enhance", form(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), 415, "unrecognised binary data"),
        ("/api/v1/images/upscale", form(SAMPLE.read_bytes(), scale="9"), 400, "imagen-scale must be"),
        (
            "/api/v1/images/upscale",
            form(SAMPLE.read_bytes(), colour="red"),
            400,
            "unknown option imagen-colour",
        ),
    ],
)
def test_bad_uploads(client: Any, path: str, data: dict[str, Any], status: int, error: str) -> None:
    resp = client.post(path, data=data)
    assert resp.status_code == status and error in resp.json["error"], resp.json


def test_too_large_and_unknown_paths(client: Any, monkeypatch: pytest.MonkeyPatch, api_env: Stack) -> None:
    monkeypatch.setenv("API_MAX_UPLOAD_BYTES", "1000")
    small = Client(create_app("api", MAIN, "http").test_client(), "alice@example.com")
    resp = small.post("/api/v1/images/enhance", data=form(SAMPLE.read_bytes()))
    assert resp.status_code == 413 and "up to 1000 bytes" in resp.json["error"]
    assert client.get("/nothing").status_code == 404
    assert client.put("/api/v1/jobs/abc").status_code == 405
    assert client.get("/api/v1/jobs/xyz").status_code == 404
    assert client.get("/api/v1/jobs", query_string={"limit": "0"}).status_code == 400
    assert client.get("/api/v1/jobs", query_string={"object": ""}).status_code == 400
    assert client.get("/api/v1/jobs", query_string={"object": "enhance/none.jpg"}).status_code == 404
    for outside in ("results/enhance/x.jpg", "elsewhere/x.jpg"):  # no job there: 404, no storage call
        assert client.get("/api/v1/jobs", query_string={"object": outside}).status_code == 404


def test_a_signed_url_is_signed_for_the_option_headers(client: Any) -> None:
    resp = client.post(
        "/api/v1/uploads/upscale",
        json={"filename": "../big photo.jpg", "content_type": "image/jpeg", "options": {"scale": "2"}},
    )
    assert resp.status_code == 200, resp.json
    grant = resp.json
    assert grant["headers"]["x-goog-meta-imagen-scale"] == "2"
    assert grant["headers"]["x-goog-meta-imagen-owner"] == "alice@example.com"
    signed = parse_qs(urlparse(grant["upload_url"]).query)["X-Goog-SignedHeaders"][0].split(";")
    # what a PUT must send: the owner too, so the caller cannot name another
    assert {"content-type", "host", "x-goog-meta-imagen-scale", "x-goog-meta-imagen-owner"} <= set(signed)
    assert object_name(grant["object"]).endswith("/big_photo.jpg")
    for declared in ("text/plain", "image/svg+xml", "text/html"):  # only formats imagen decodes
        bad = client.post("/api/v1/uploads/upscale", json={"filename": "a", "content_type": declared})
        assert bad.status_code == 400 and "content_type must be one of" in bad.json["error"]
    assert client.post("/api/v1/uploads/upscale", data="x").status_code == 400


def test_health_tells_callers_up_or_down_and_operators_each_check(raw: Any) -> None:
    """This tier runs no Triton for the API: the answer follows what the operator's checks say."""
    body = raw.get("/health", headers=token(OPERATOR)).json
    assert set(body["checks"]) == {"firestore", "pubsub", "triton"}
    assert body["checks"]["firestore"]["ok"] and body["checks"]["pubsub"]["ok"]
    up = all(c["ok"] for c in body["checks"].values())
    for headers in ({}, token("alice@example.com")):  # callers: up or down, and nothing else
        public = raw.get("/health", headers=headers)
        assert (public.status_code, public.json) == (
            (200, {"status": "up"}) if up else (503, {"status": "down"})
        )


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotAnImage("the file looks like a spreadsheet"), 415),
        (BadInput("not an image format imagen reads (the header says so)"), 400),  # its words don't count
    ],
)
def test_the_status_follows_the_errors_type(
    client: Any, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    def probe(*args: Any) -> None:
        raise error

    monkeypatch.setattr(imaging, "probe", probe)
    resp = client.post("/api/v1/images/enhance", data=form(SAMPLE.read_bytes()))
    assert resp.status_code == status and resp.json == {"error": str(error)}


def test_a_service_fault_is_a_stable_answer_with_the_id_of_its_log_line(
    client: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Storage's refusal and a fault of ours: neither's text reaches the caller; the id does,
    and the log line with the detail carries the same id."""
    from google.api_core import exceptions as gexc

    from imagen.cloud.objects import ObjectStore

    for fault, status in (
        (gexc.Forbidden("imagen-api lacks storage.objects.get"), 502),
        (KeyError("x"), 500),
    ):

        def generation(self: ObjectStore, bucket: str, name: str, fault: Exception = fault) -> int:
            raise fault

        monkeypatch.setattr(ObjectStore, "generation", generation)
        capsys.readouterr()
        resp = client.get("/api/v1/jobs", query_string={"object": "enhance/secret.jpg"})
        assert resp.status_code == status
        assert set(resp.json) == {"error", "error_id"} and "storage.objects" not in resp.json["error"]
        logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        line = next(entry for entry in logged if entry.get("event") == "api_error")
        assert line["error_id"] == resp.json["error_id"] and type(fault).__name__ in line["error"]


def test_without_a_valid_token_nothing_is_answered_or_stored(raw: Any, harness: Harness) -> None:
    before = {b.name for b in harness.bucket.list_blobs(prefix="enhance/api/")}
    other_key = token("alice@example.com", key="another-stack-key-" + "x" * 32)
    expired = {"Authorization": f"Bearer {identity.mint_local('alice@example.com', KEY, ttl_s=-3600)}"}
    for headers in (
        {},
        {"Authorization": "Basic YTpi"},
        other_key,
        expired,
        {"Authorization": "Bearer x.y.z"},
    ):
        resp = raw.post("/api/v1/images/enhance", data=form(SAMPLE.read_bytes()), headers=headers)
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer"), resp.json
        assert raw.get(f"/api/v1/jobs/{'0' * 32}", headers=headers).status_code == 401
    assert {b.name for b in harness.bucket.list_blobs(prefix="enhance/api/")} == before


def test_a_job_is_its_callers_alone(raw: Any, harness: Harness) -> None:
    alice, bob, ops = Client(raw, "alice@example.com"), Client(raw, "bob@example.com"), Client(raw, OPERATOR)
    made = alice.post("/api/v1/images/enhance", data=form(SAMPLE.read_bytes())).json
    name = object_name(made["object"])
    assert alice.get(made["status_url"]).status_code == 200
    never = "f" * 32
    for resp, job_id in (
        (bob.get(made["status_url"]), made["job_id"]),
        (bob.get(made["status_url"] + "/result"), made["job_id"]),
        (bob.get(f"/api/v1/jobs/{never}"), never),  # the same answer as for no job at all
    ):
        assert resp.status_code == 404 and resp.json == {"error": f"no job {job_id}"}
    absent = f"enhance/api/{never}/cat.jpg"
    theirs, nothing = (bob.get("/api/v1/jobs", query_string={"object": n}) for n in (name, absent))
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json["error"].replace(name, "N") == nothing.json["error"].replace(absent, "N")
    assert made["job_id"] not in {j["job_id"] for j in bob.get("/api/v1/jobs").json["jobs"]}
    assert made["job_id"] in {j["job_id"] for j in alice.get("/api/v1/jobs").json["jobs"]}
    seen = ops.get(made["status_url"]).json
    assert seen["owner"] == "alice@example.com"
    assert alice.get(made["status_url"]).json.get("owner") is None  # callers see no owners
    assert harness.bucket.get_blob(name).metadata["imagen-owner"] == "alice@example.com"


def test_a_form_field_cannot_name_another_owner(client: Any, harness: Harness) -> None:
    made = client.post("/api/v1/images/enhance", data=form(SAMPLE.read_bytes(), owner="bob@example.com")).json
    assert harness.bucket.get_blob(object_name(made["object"])).metadata == {
        "imagen-owner": "alice@example.com"
    }


def test_what_is_stored_is_what_was_sniffed(client: Any, harness: Harness) -> None:
    png = io.BytesIO()
    imaging.Image.new("RGB", (64, 48), "red").save(png, "PNG")
    upload = {"file": (io.BytesIO(png.getvalue()), "page.html", "text/html")}
    made = client.post("/api/v1/images/enhance", data=upload)
    assert made.status_code == 202, made.json
    assert harness.bucket.get_blob(object_name(made.json["object"])).content_type == "image/png"


@pytest.mark.parametrize(
    ("model", "fields", "error"),
    [
        ("background_remove", {"background": "rgb(999,0,0)"}, "imagen-background"),
        ("background_remove", {"background": "#12c0000"}, "imagen-background"),
        ("enhance", {"quality": "80", "format": "png"}, "imagen-quality applies to"),
        ("upscale", {"scale": "2"}, "cannot be written"),  # no result fits MAX_OUTPUT_PIXELS
    ],
)
def test_every_option_is_checked_at_upload_with_the_file(
    raw: Any,
    monkeypatch: pytest.MonkeyPatch,
    harness: Harness,
    model: str,
    fields: dict[str, str],
    error: str,
) -> None:
    monkeypatch.setenv("MAX_OUTPUT_PIXELS", "100000")  # under the sample's 400x266
    client = Client(create_app("api", MAIN, "http").test_client(), "alice@example.com")
    before = {b.name for b in harness.bucket.list_blobs(prefix=f"{model}/api/")}
    resp = client.post(f"/api/v1/images/{model}", data=form(SAMPLE.read_bytes(), **fields))
    assert resp.status_code == 400 and error in resp.json["error"], resp.json
    assert {b.name for b in harness.bucket.list_blobs(prefix=f"{model}/api/")} == before


def test_a_failure_of_the_services_reads_as_such_and_its_detail_is_the_operators(
    raw: Any, harness: Harness
) -> None:
    alice, ops = Client(raw, "alice@example.com"), Client(raw, OPERATOR)
    made = alice.post("/api/v1/images/enhance", data=form(SAMPLE.read_bytes())).json
    detail = "ServiceUnavailable: 503 POST https://storage.example/upload?key=internal: backend error"
    failed = {"status": "failed", "attempts": 5, "reason": f"gave up after 5 attempts; last error: {detail}"}
    doc = harness.svc.jobs.col.document(made["job_id"])
    doc.update({**failed, "last_error": detail, "history": [{"status": "failed", "dead_letter": True}]})
    mine = alice.get(made["status_url"]).json
    assert (
        mine["status"] == "failed" and "a service it needs kept failing after 5 attempt(s)" in mine["reason"]
    )
    assert "storage.example" not in json.dumps(mine)
    seen = ops.get(made["status_url"]).json
    assert seen["reason"] == failed["reason"] and seen["last_error"] == detail
    # a failure about the file itself keeps its words for the caller
    doc.update({"reason": "not an image: the file looks like text", "history": [{"status": "failed"}]})
    assert alice.get(made["status_url"]).json["reason"] == "not an image: the file looks like text"
