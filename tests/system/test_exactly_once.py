"""Every upload ends exactly once: duplicates, overwrites, a Triton outage and a killed worker.

(Storage and Firestore outages met mid-call are in tests/integration/test_handlers.py, where the
test can hold the call inside the outage and prove it was met.)"""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from emulators.bridge import backoff_s, to_cloudevent
from emulators.settings import StackSettings
from emulators.stack import Stack
from imagen.core.names import object_name
from imagen.jobs.messages import JobMessage
from tests.messages import push_body

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
    push = push_body(msg, subscription=stack.names.subscription_path(stack.names.job_subscription("upscale")))
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
    wait_until(lambda: any((jobs_col.document(j).get().to_dict() or {}).get("waiting_for") for j in jids), 30)
    restore.start(restore.service("triton"))
    jobs = [wait_finished(jobs_col, j, timeout_s=120) for j in jids]
    assert [j["status"] for j in jobs] == ["done"] * 10
    assert [j["attempts"] for j in jobs] == [1] * 10  # the outage cost no attempt
    assert any(j.get("waits", 0) >= 1 for j in jobs)  # it was really met


BURST_MODELS = ("style_aged", "enhance", "style_comic", "background_remove", "upscale")


def test_triton_down_longer_than_the_whole_retry_window_costs_time_not_jobs(
    bucket: Any, jobs_col: Any, stack: StackSettings, restore: Stack, unique: str
) -> None:
    """A burst meets Triton down for longer than a message's whole retry window (its deliveries
    in the 2..60 s backoff, then the dead letter): every job ends done on its first attempt, the
    jobs say what they waited for, and the deliveries and probes during the outage stay bounded
    (each worker's breaker turns deliveries away unclaimed and probes every TRITON_PROBE_S)."""
    window_s = sum(backoff_s(stack, a) for a in range(1, stack.max_delivery_attempts + 1))
    probe_s = int(stack.function_env["TRITON_PROBE_S"])
    logs_before = {m: len(log_events(stack, f"fn-on_job-{m}", "service_down")) for m in BURST_MODELS}

    restore.stop_one("triton")
    down_at = time.monotonic()
    jids = [
        upload(bucket, f"{BURST_MODELS[i % len(BURST_MODELS)]}/burst-down-{unique}/{i}.jpg", small_variant(i))
        for i in range(15)
    ]
    # Until every job's message has been through its whole retry window: dead-lettered, and
    # published again by on_dead_letter since the job's attempts are unspent.
    wait_until(
        lambda: all(log_events(stack, "fn-on_dead_letter", "job_requeued", j) for j in jids),
        timeout_s=2 * window_s + 120,
        every_s=1,
    )
    waiting = [jobs_col.document(j).get().to_dict() or {} for j in jids]
    assert all(j["status"] == "queued" and j.get("waiting_for") == "triton" for j in waiting), [
        (j["status"], j.get("waiting_for"), j.get("reason")) for j in waiting
    ]
    assert all(j["attempts"] == 0 for j in waiting)  # past the whole retry window: nothing spent
    restore.start(restore.service("triton"))
    outage_s = time.monotonic() - down_at

    jobs = [wait_finished(jobs_col, j, timeout_s=300) for j in jids]
    assert [j["status"] for j in jobs] == ["done"] * len(jids), [j.get("reason") for j in jobs]
    assert [j["attempts"] for j in jobs] == [1] * len(jids)
    # Deliveries: each job's message came back at most once per backoff step, dead-lettered and
    # published again each window; a job was claimed at most once more than the run that finished.
    cycles = outage_s / window_s + 2
    for job in jobs:
        assert 1 <= job["waits"] <= stack.max_delivery_attempts * cycles, job["waits"]
        assert sum(1 for h in job["history"] if h["status"] == "running") <= 2
    # Probes: each worker noticed the outage once and probed at its bounded rate.
    for model in BURST_MODELS:
        downs = len(log_events(stack, f"fn-on_job-{model}", "service_down")) - logs_before[model]
        assert 1 <= downs <= outage_s / probe_s + 2, (model, downs)
        assert log_events(stack, f"fn-on_job-{model}", "service_up")
