"""The HTTP API (function `api`) on the running stack, through a real HTTP client."""

from __future__ import annotations

import io
from typing import Any

import requests
from PIL import Image

from emulators.settings import LOCAL_OPERATOR, ROOT
from imagen.core.names import object_name

from .conftest import wait_finished, wait_until

SAMPLE = ROOT / "samples" / "cat.jpg"
ALICE, BOB = "alice@example.com", "bob@example.com"


def caller(stack: Any, email: str) -> requests.Session:
    """An HTTP client that names `email` on every request (a token the stack's key signed)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.api_token(email)}"
    return session


def post_image(
    stack: Any, model: str, data: bytes | None, name: str = "cat.jpg", as_: str = ALICE, **fields: str
) -> Any:
    files = {"file": (name, data, "image/jpeg")} if data is not None else None
    url = f"{stack.api_url}/api/v1/images/{model}"
    return caller(stack, as_).post(url, files=files, data=fields, timeout=60)


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
    alice = caller(stack, ALICE)
    first = alice.get(stack.api_url + body["status_url"], timeout=30)
    assert first.status_code == 200 and first.json()["status"] in ("queued", "running", "done")
    wait_finished(jobs_col, body["job_id"])
    job = alice.get(stack.api_url + body["status_url"], timeout=30).json()
    assert job["status"] == "done" and job["options"] == body["options"] and "holder" not in job
    # the result over HTTP, with no storage credentials: the signed link in the answer
    got = requests.get(job["result_url"], timeout=60)
    assert got.status_code == 200, got.text
    img = Image.open(io.BytesIO(got.content))
    assert img.format == "PNG" and img.size == (800, 532)
    assert got.content == bucket.blob(object_name(job["result_uri"])).download_as_bytes()
    hop = alice.get(f"{stack.api_url}{body['status_url']}/result", allow_redirects=False, timeout=30)
    assert hop.status_code == 303 and "X-Goog-Signature=" in hop.headers["Location"]
    assert requests.get(hop.headers["Location"], timeout=60).content == got.content
    by_object = alice.get(
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
        (
            post_image(stack, "background_remove", SAMPLE.read_bytes(), background="rgb(999,0,0)"),
            400,
            "imagen-background",
        ),
        (caller(stack, ALICE).get(f"{stack.api_url}/api/v1/jobs/{'0' * 32}", timeout=30), 404, "no job 0"),
        (caller(stack, ALICE).get(f"{stack.api_url}/api/v1/jobs/../../etc", timeout=30), 404, ""),
        (
            caller(stack, ALICE).delete(f"{stack.api_url}/api/v1/images/enhance", timeout=30),
            405,
            "DELETE is not allowed",
        ),
        (requests.get(f"{stack.api_url}/api/v1/jobs", timeout=30), 401, "send an identity token"),
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
    resp = caller(stack, ALICE).post(
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
        found = caller(stack, ALICE).get(f"{stack.api_url}{grant['status_url']}", timeout=30)
        return str(found.json()["job_id"]) if found.status_code == 200 else None

    job = wait_finished(jobs_col, wait_until(job_id, timeout_s=60))
    assert job["status"] == "done" and job["options"] == {"imagen-format": "webp"}
    assert bucket.get_blob(name).metadata["imagen-format"] == "webp"


def test_health_says_up_to_callers_and_each_check_to_operators(stack: Any) -> None:
    public = requests.get(f"{stack.api_url}/health", timeout=30)
    assert public.status_code == 200 and public.json() == {"status": "up"}
    resp = caller(stack, LOCAL_OPERATOR).get(f"{stack.api_url}/health", timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "up" and set(body["checks"]) == {"firestore", "pubsub", "triton"}
    assert all(c["ok"] for c in body["checks"].values())


def test_health_says_which_dependency_is_down(stack: Any, restore: Any) -> None:
    restore.stop_one("triton")
    public = requests.get(f"{stack.api_url}/health", timeout=60)
    assert public.status_code == 503 and public.json() == {"status": "down"}  # no addresses, no errors
    resp = caller(stack, LOCAL_OPERATOR).get(f"{stack.api_url}/health", timeout=60)
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "down" and body["checks"]["triton"]["ok"] is False
    assert body["checks"]["firestore"]["ok"] and body["checks"]["pubsub"]["ok"]
    assert "error" in body["checks"]["triton"]


def test_a_second_caller_sees_nothing_of_the_first(stack: Any, jobs_col: Any) -> None:
    """Two identities against the running stack: ids, objects, result links and lists."""
    alice, bob, ops = caller(stack, ALICE), caller(stack, BOB), caller(stack, LOCAL_OPERATOR)
    made = post_image(stack, "style_comic", SAMPLE.read_bytes(), as_=ALICE).json()
    wait_finished(jobs_col, made["job_id"])
    job_url, name = f"{stack.api_url}{made['status_url']}", object_name(made["object"])
    assert "result_url" in alice.get(job_url, timeout=30).json()
    never = "f" * 32
    answers = {
        "job": bob.get(job_url, timeout=30),
        "result": bob.get(f"{job_url}/result", allow_redirects=False, timeout=30),
        "no such job": bob.get(f"{stack.api_url}/api/v1/jobs/{never}", timeout=30),
        "object": bob.get(f"{stack.api_url}/api/v1/jobs", params={"object": name}, timeout=30),
    }
    print({k: (r.status_code, r.json()) for k, r in answers.items()})  # the second caller's view
    assert {r.status_code for r in answers.values()} == {404}
    for answer in answers.values():
        assert "X-Goog-Signature" not in answer.text and "Location" not in answer.headers
    assert answers["job"].json() == {"error": f"no job {made['job_id']}"}
    assert answers["no such job"].json() == {"error": f"no job {never}"}  # alike: nothing to learn
    listed = bob.get(f"{stack.api_url}/api/v1/jobs", timeout=30).json()["jobs"]
    assert made["job_id"] not in {j["job_id"] for j in listed}
    assert made["job_id"] in {
        j["job_id"] for j in alice.get(f"{stack.api_url}/api/v1/jobs", timeout=30).json()["jobs"]
    }
    assert ops.get(job_url, timeout=30).json()["owner"] == ALICE


def test_prefer_wait_answers_with_the_result_when_the_job_ends(stack: Any) -> None:
    resp = post_image(stack, "style_aged", SAMPLE.read_bytes(), format="webp")
    assert resp.status_code == 202  # asked for no wait
    files = {"file": ("cat.jpg", SAMPLE.read_bytes(), "image/jpeg")}
    waited = caller(stack, ALICE).post(
        f"{stack.api_url}/api/v1/images/style_aged",
        files=files,
        data={"format": "webp"},
        headers={"Prefer": "wait=60"},
        timeout=90,
    )
    assert waited.status_code == 200, waited.text
    assert waited.headers["Preference-Applied"] == "wait=60"
    job = waited.json()
    assert job["status"] == "done" and job["result_expires_in_s"] > 0
    img = Image.open(io.BytesIO(requests.get(job["result_url"], timeout=60).content))
    assert img.format == "WEBP"
