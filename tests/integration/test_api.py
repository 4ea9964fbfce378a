"""The HTTP API's handler as functions-framework serves it (in-process), against the real
emulators; the running stack and a real HTTP client are in tests/system/test_api.py."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from functions_framework import create_app

from emulators.stack import Stack
from imagen.core.errors import BadInput, NotAnImage
from imagen.core.names import object_name
from imagen.image import imaging

from .conftest import SAMPLE, Harness
from .test_handlers import MAIN, app_env  # noqa: F401  (the fixture)


@pytest.fixture
def client(app_env: Stack, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    monkeypatch.setenv("BUCKET", app_env.s.bucket)
    return create_app("api", MAIN, "http").test_client()


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
    assert name.startswith("enhance/api/") and blob.metadata == {"imagen-quality": "70"}
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


def test_too_large_and_unknown_paths(client: Any, monkeypatch: pytest.MonkeyPatch, app_env: Stack) -> None:  # noqa: F811
    monkeypatch.setenv("API_MAX_UPLOAD_BYTES", "1000")
    small = create_app("api", MAIN, "http").test_client()
    resp = small.post("/api/v1/images/enhance", data=form(SAMPLE.read_bytes()))
    assert resp.status_code == 413 and "up to 1000 bytes" in resp.json["error"]
    assert client.get("/nothing").status_code == 404
    assert client.put("/api/v1/jobs/abc").status_code == 405
    assert client.get("/api/v1/jobs/xyz").status_code == 404
    assert client.get("/api/v1/jobs").status_code == 400
    assert client.get("/api/v1/jobs", query_string={"object": "enhance/none.jpg"}).status_code == 404


def test_a_signed_url_is_signed_for_the_option_headers(client: Any) -> None:
    resp = client.post(
        "/api/v1/uploads/upscale",
        json={"filename": "../big photo.jpg", "content_type": "image/jpeg", "options": {"scale": "2"}},
    )
    assert resp.status_code == 200, resp.json
    grant = resp.json
    assert grant["headers"]["x-goog-meta-imagen-scale"] == "2"
    signed = parse_qs(urlparse(grant["upload_url"]).query)["X-Goog-SignedHeaders"][0].split(";")
    assert {"content-type", "host", "x-goog-meta-imagen-scale"} <= set(signed)  # what a PUT must send
    assert object_name(grant["object"]).endswith("/big_photo.jpg")
    bad = client.post("/api/v1/uploads/upscale", json={"filename": "a.txt", "content_type": "text/plain"})
    assert bad.status_code == 400 and "content_type must be an image type" in bad.json["error"]
    assert client.post("/api/v1/uploads/upscale", data="x").status_code == 400


def test_health_names_each_dependency(client: Any) -> None:
    body = client.get("/health").json
    assert set(body["checks"]) == {"firestore", "pubsub", "triton"}
    assert body["checks"]["firestore"]["ok"] and body["checks"]["pubsub"]["ok"]


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


def test_a_refusal_from_storage_is_its_status(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Google API's 4xx (an object this API may not read) is answered with that status, as JSON."""
    from google.api_core import exceptions as gexc

    from imagen.cloud.objects import ObjectStore

    def generation(self: ObjectStore, bucket: str, name: str) -> int:
        raise gexc.Forbidden("imagen-api may not read it")

    monkeypatch.setattr(ObjectStore, "generation", generation)
    resp = client.get("/api/v1/jobs", query_string={"object": "enhance/secret.jpg"})
    assert resp.status_code == 403
    assert resp.json == {"error": "storage or database refused: imagen-api may not read it"}
