"""Every upload ends exactly once: duplicates, overwrites, a Triton outage and a killed worker.

(Storage and Firestore outages met mid-call are in tests/integration/test_handlers.py, where the
test can hold the call inside the outage and prove it was met.)"""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from emulators.bridge import to_cloudevent
from emulators.stack import Stack
from imagen.events import JobMessage
from imagen.names import object_name

from .conftest import log_events, upload, wait_finished, wait_until

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "cat.jpg"


def small_variant(i: int) -> bytes:
    """A distinct small photo per i (a crop of the sample)."""
    im = Image.open(SAMPLE).convert("RGB").crop((i * 7, 0, i * 7 + 200, 150))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def big_photo() -> bytes:
    """A photo large enough that upscaling it takes several seconds on a CPU."""
    im = Image.open(SAMPLE).convert("RGB").resize((1000, 666), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def statuses(job: dict[str, Any]) -> list[str]:
    return [h["status"] for h in job["history"]]


def test_same_finalize_event_three_times(bucket: Any, jobs_col: Any, stack: Any, unique: str) -> None:
    name = f"enhance/dup-{unique}/cat.jpg"
    jid = upload(bucket, name, SAMPLE.read_bytes())  # delivery 1, through the bridge
    blob = bucket.get_blob(name)
    attributes = {"eventType": "OBJECT_FINALIZE", "bucketId": bucket.name, "objectId": name}
    converted = to_cloudevent(f"dup-{unique}", attributes, json.dumps(blob._properties).encode())
    assert converted is not None
    headers, body = converted
    url = f"http://127.0.0.1:{stack.upload_fn_port}/"
    for _ in range(2):  # deliveries 2 and 3, as Eventarc's at-least-once delivery may do
        assert requests.post(url, data=body, headers=headers, timeout=30).status_code == 200

    job = wait_finished(jobs_col, jid)
    assert job["status"] == "done"
    wait_until(lambda: len(log_events(stack, "fn-on_upload", "job_exists", jid)) >= 2, 30)
    assert len(log_events(stack, "fn-on_upload", "job_created", jid)) == 1
    assert len(log_events(stack, "fn-on_job-enhance", "result_written", jid)) == 1
    assert statuses(job).count("done") == 1 and "failed" not in statuses(job)


def test_same_job_message_to_two_workers_at_once(bucket: Any, jobs_col: Any, stack: Any, unique: str) -> None:
    name = f"upscale/race-{unique}/cat.jpg"
    jid = upload(bucket, name, SAMPLE.read_bytes())
    blob = bucket.get_blob(name)
    msg = JobMessage(jid, "upscale", bucket.name, name, str(blob.generation))
    push: dict[str, Any] = {
        "message": {"data": base64.b64encode(msg.encode()).decode(), "messageId": f"race-{unique}"},
        "subscription": stack.names.subscription_path(stack.names.job_subscription("upscale")),
    }
    topic = stack.names.topic_path(stack.names.job_topic("upscale"))
    url = f"http://127.0.0.1:{stack.job_fn_port('upscale')}/{topic}"
    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda _: requests.post(url, json=push, timeout=120).status_code, range(2)))

    job = wait_finished(jobs_col, jid)
    assert job["status"] == "done"
    assert all(code in (200, 500) for code in codes)  # 500: "running elsewhere, retry later"
    assert len(log_events(stack, "fn-on_job-upscale", "result_written", jid)) == 1
    assert len(log_events(stack, "fn-on_job-upscale", "job_done", jid)) == 1
    assert statuses(job)[0] == "queued" and statuses(job)[-1] == "done"
    assert statuses(job).count("done") == 1


def test_overwrite_starts_a_new_job_and_leaves_the_old_one(bucket: Any, jobs_col: Any, unique: str) -> None:
    name = f"style_aged/over-{unique}/cat.jpg"
    first = upload(bucket, name, small_variant(0))
    old = wait_finished(jobs_col, first)
    assert old["status"] == "done"
    second = upload(bucket, name, small_variant(5))
    assert second != first
    new = wait_finished(jobs_col, second)
    assert new["status"] == "done"
    assert jobs_col.document(first).get().to_dict() == old  # untouched
    result = bucket.get_blob(object_name(new["result_uri"]))
    assert result.metadata["imagen-source-generation"] == new["generation"]


def test_triton_down_then_back_within_the_retry_window(
    bucket: Any, jobs_col: Any, restore: Stack, unique: str
) -> None:
    restore.stop_one("triton")
    jids = [upload(bucket, f"style_aged/outage-{unique}/{i}.jpg", small_variant(i)) for i in range(10)]
    wait_until(lambda: any((jobs_col.document(j).get().to_dict() or {}).get("last_error") for j in jids), 30)
    restore.start(restore.service("triton"))
    jobs = [wait_finished(jobs_col, j, timeout_s=120) for j in jids]
    assert [j["status"] for j in jobs] == ["done"] * 10
    assert any(j["attempts"] > 1 for j in jobs)  # the outage was really met and retried


def test_triton_down_past_the_retry_budget_fails_through_the_dead_letter_topic(
    bucket: Any, jobs_col: Any, stack: Any, restore: Stack, unique: str
) -> None:
    restore.stop_one("triton")
    jids = [upload(bucket, f"style_aged/dead-{unique}/{i}.jpg", small_variant(i)) for i in range(2)]
    jobs = [wait_finished(jobs_col, j, timeout_s=150) for j in jids]
    restore.start(restore.service("triton"))
    for job in jobs:
        assert job["status"] == "failed"
        assert job["reason"].startswith(f"gave up after {stack.max_delivery_attempts} attempts")
        assert "Triton unreachable" in job["reason"]
        assert job["history"][-1].get("dead_letter") is True
        assert job.get("lease_until") is None
    assert (
        wait_finished(jobs_col, upload(bucket, f"style_aged/dead-{unique}/after.jpg", small_variant(3)))[
            "status"
        ]
        == "done"
    )
