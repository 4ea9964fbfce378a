"""Completion events on imagen-events: other pipelines chain on them.

(Each attempt's start and end events, their schemas and options, are checked in-process in
tests/integration/test_handlers.py.)"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from PIL import Image

from imagen.core.names import object_name
from tests import event_schemas
from tests.messages import pull_for

from .conftest import upload, wait_finished
from .test_cli import imagen

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "cat.jpg"


@pytest.fixture
def events_sub(stack: Any, unique: str) -> Iterator[tuple[Any, str]]:
    sub = pubsub_v1.SubscriberClient()
    path = sub.subscription_path(stack.project, f"chain-test-{unique}")
    sub.create_subscription(name=path, topic=stack.names.topic_path(stack.names.events_topic))
    try:
        yield sub, path
    finally:
        sub.delete_subscription(subscription=path)


def next_event(
    sub: Any, path: str, job_id: str, timeout_s: float = 120
) -> tuple[dict[str, str], dict[str, Any]]:
    message = pull_for(sub, path, job_id, timeout_s)
    return dict(message.attributes), event_schemas.check(message)  # its data, as its schema says


def test_chain_upscale_then_background_remove_through_the_event(
    bucket: Any, jobs_col: Any, events_sub: tuple[Any, str], unique: str
) -> None:
    sub, path = events_sub
    first = upload(bucket, f"upscale/chain-{unique}/cat.jpg", SAMPLE.read_bytes())
    attrs, data = next_event(sub, path, first)
    assert attrs["ce-type"] == "imagen.job.v1.done"
    assert attrs["ce-specversion"] == "1.0" and attrs["ce-subject"] == f"jobs/{first}"
    assert attrs["model"] == "upscale"
    assert attrs["source"] == f"gs://{bucket.name}/upscale/chain-{unique}/cat.jpg"
    assert data["status"] == "done" and data["result_uri"] == attrs["result_uri"]

    # The chained pipeline: the upscaled result goes on to background_remove.
    upscaled = bucket.blob(object_name(attrs["result_uri"])).download_as_bytes()
    second = upload(bucket, f"background_remove/chain-{unique}/cat-4x.jpg", upscaled)
    attrs2, _ = next_event(sub, path, second)
    assert attrs2["ce-type"] == "imagen.job.v1.done" and attrs2["model"] == "background_remove"
    final = Image.open(io.BytesIO(bucket.blob(object_name(attrs2["result_uri"])).download_as_bytes()))
    assert final.mode == "RGBA" and final.size == (1600, 1064)
    assert wait_finished(jobs_col, second)["status"] == "done"


def test_a_failed_job_announces_itself_and_its_retry_by_the_cli_is_a_new_event(
    bucket: Any, jobs_col: Any, events_sub: tuple[Any, str], unique: str
) -> None:
    """`imagen retry` (a separate process, as a user runs it) sends a failed job to a worker
    again; it fails again, and that is a second event a consumer deduplicating on ce-id keeps."""
    sub, path = events_sub
    jid = upload(bucket, f"enhance/chain-{unique}/empty.jpg", b"")
    first, data = next_event(sub, path, jid)
    assert first["ce-type"] == "imagen.job.v1.failed" and first["result_uri"] == ""
    assert "empty" in data["reason"]
    retried = imagen("retry", jid)
    assert retried.returncode == 0, retried.stderr
    second, data = next_event(sub, path, jid)
    assert second["ce-type"] == "imagen.job.v1.failed"
    assert first["ce-id"] != second["ce-id"], "a consumer deduplicating on ce-id would drop the second"
    assert data["attempts"] == 2
    job = wait_finished(jobs_col, jid)  # the file is still empty: it failed again, once more
    assert job["status"] == "failed" and job["attempts"] == 2
    assert any(h.get("retry") for h in job["history"])
