"""The HTTP API (function `api`) on the running stack, through a real HTTP client."""

from __future__ import annotations

import io
from typing import Any

import requests
from PIL import Image

from emulators.settings import ROOT
from imagen.core.names import object_name

from .conftest import wait_finished, wait_until

SAMPLE = ROOT / "samples" / "cat.jpg"


def post_image(stack: Any, model: str, data: bytes | None, name: str = "cat.jpg", **fields: str) -> Any:
    files = {"file": (name, data, "image/jpeg")} if data is not None else None
    return requests.post(f"{stack.api_url}/api/v1/images/{model}", files=files, data=fields, timeout=60)


def test_an_upload_runs_through_the_event_path_with_its_options(
    stack: Any, bucket: Any, jobs_col: Any
) -> None:
    resp = post_image(stack, "upscale", SAMPLE.read_bytes(), format="png", scale="2")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert resp.headers["Location"] == body["status_url"] == f"/api/v1/jobs/{body['job_id']}"
    assert body["object"].startswith(f"gs://{bucket.name}/upscale/api/") and body["object"].endswith(
        "/cat.jpg"
    )
    assert body["options"] == {"imagen-format": "png", "imagen-scale": "2"}
    first = requests.get(stack.api_url + body["status_url"], timeout=30)
    assert first.status_code == 200 and first.json()["status"] in ("queued", "running", "done")
    wait_finished(jobs_col, body["job_id"])
    job = requests.get(stack.api_url + body["status_url"], timeout=30).json()
    assert job["status"] == "done" and job["options"] == body["options"] and "holder" not in job
    img = Image.open(io.BytesIO(bucket.blob(object_name(job["result_uri"])).download_as_bytes()))
    assert img.format == "PNG" and img.size == (800, 532)
    by_object = requests.get(
        f"{stack.api_url}/api/v1/jobs", params={"object": object_name(body["object"])}, timeout=30
    )
    assert by_object.json()["job_id"] == body["job_id"]


def test_bad_requests_get_clear_errors_and_store_nothing(stack: Any, bucket: Any) -> None:
    before = {b.name for b in bucket.list_blobs(prefix="enhance/api/")}
    cases = [
        (post_image(stack, "sharpen", SAMPLE.read_bytes()), 404, "unknown model 'sharpen'; one of: upscale"),
        (
            post_image(stack, "enhance", None),
            400,
            "no file: send the image as the multipart form field 'file'",
        ),
        (
            post_image(stack, "enhance", b"hello, world\n", "notes.txt"),
            415,
            "not an image: the file looks like text",
        ),
        (
            post_image(stack, "enhance", SAMPLE.read_bytes(), format="gif"),
            400,
            "imagen-format must be one of",
        ),
        (
            post_image(stack, "enhance", SAMPLE.read_bytes(), scale="2"),
            400,
            "imagen-scale applies to upscale only",
        ),
        (requests.get(f"{stack.api_url}/api/v1/jobs/{'0' * 32}", timeout=30), 404, f"no job {'0' * 32}"),
        (requests.get(f"{stack.api_url}/api/v1/jobs/../../etc", timeout=30), 404, ""),
        (requests.delete(f"{stack.api_url}/api/v1/images/enhance", timeout=30), 405, "DELETE is not allowed"),
    ]
    for resp, status, message in cases:
        assert resp.status_code == status, (resp.status_code, resp.text)
        assert resp.headers["Content-Type"].startswith("application/json")
        assert message in resp.json()["error"]
    assert {b.name for b in bucket.list_blobs(prefix="enhance/api/")} == before


def test_a_file_over_the_limit_is_refused_with_the_way_to_send_it(stack: Any) -> None:
    limit = int(stack.function_env.get("API_MAX_UPLOAD_BYTES", 30 * 1024 * 1024))
    resp = post_image(stack, "enhance", b"\xff\xd8" + bytes(limit + 1))
    assert resp.status_code == 413
    assert "POST /api/v1/uploads/{model} for a signed URL" in resp.json()["error"]


def test_a_signed_url_for_a_large_file(stack: Any, bucket: Any, jobs_col: Any) -> None:
    resp = requests.post(
        f"{stack.api_url}/api/v1/uploads/style_aged",
        json={"filename": "big.jpg", "content_type": "image/jpeg", "options": {"format": "webp"}},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    grant = resp.json()
    assert "X-Goog-Signature=" in grant["upload_url"] and grant["method"] == "PUT"
    assert grant["headers"]["x-goog-meta-imagen-format"] == "webp"
    put = requests.put(grant["upload_url"], data=SAMPLE.read_bytes(), headers=grant["headers"], timeout=60)
    assert put.status_code == 200, put.text
    name = object_name(grant["object"])

    def job_id() -> str | None:
        found = requests.get(f"{stack.api_url}{grant['status_url']}", timeout=30)
        return str(found.json()["job_id"]) if found.status_code == 200 else None

    job = wait_finished(jobs_col, wait_until(job_id, timeout_s=60))
    assert job["status"] == "done" and job["options"] == {"imagen-format": "webp"}
    assert bucket.get_blob(name).metadata["imagen-format"] == "webp"


def test_health_reports_each_dependency(stack: Any) -> None:
    resp = requests.get(f"{stack.api_url}/health", timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok" and set(body["checks"]) == {"firestore", "pubsub", "triton"}
    assert all(c["ok"] for c in body["checks"].values())


def test_health_says_which_dependency_is_down(stack: Any, restore: Any) -> None:
    restore.stop_one("triton")
    resp = requests.get(f"{stack.api_url}/health", timeout=60)
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "degraded" and body["checks"]["triton"]["ok"] is False
    assert body["checks"]["firestore"]["ok"] and body["checks"]["pubsub"]["ok"]
    assert "error" in body["checks"]["triton"]
