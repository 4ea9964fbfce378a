"""Completion events on imagen-events: other pipelines chain on them."""

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
from tests.messages import events_for, pull_for

from .conftest import upload, wait_finished

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


def test_failed_jobs_announce_themselves(bucket: Any, events_sub: tuple[Any, str], unique: str) -> None:
    sub, path = events_sub
    jid = upload(bucket, f"enhance/chain-{unique}/empty.jpg", b"")
    attrs, data = next_event(sub, path, jid)
    assert attrs["ce-type"] == "imagen.job.v1.failed"
    assert attrs["result_uri"] == ""
    assert "empty" in data["reason"]


def test_a_retried_job_that_fails_again_is_a_new_event(
    stack: Any, bucket: Any, jobs_col: Any, events_sub: tuple[Any, str], unique: str
) -> None:
    from imagen.cloud.publisher import Publisher

    sub, path = events_sub
    jid = upload(bucket, f"enhance/chain-{unique}/empty.jpg", b"")
    first, _ = next_event(sub, path, jid)
    store = stack.job_store()
    Publisher(pubsub_v1.PublisherClient(), stack.names).job(store.retry(jid))  # what `imagen retry` does
    second, data = next_event(sub, path, jid)
    assert first["ce-type"] == second["ce-type"] == "imagen.job.v1.failed"
    assert first["ce-id"] != second["ce-id"], "a consumer deduplicating on ce-id would drop the second"
    assert data["attempts"] == 2


def test_each_attempt_announces_its_start_then_the_end(
    bucket: Any, events_sub: tuple[Any, str], unique: str
) -> None:
    sub, path = events_sub
    jid = upload(
        bucket, f"style_aged/chain-{unique}/cat.jpg", SAMPLE.read_bytes(), **{"imagen-format": "png"}
    )
    got = {
        m.attributes["ce-type"]: m for m in events_for(sub, path, jid, "imagen.job.v1.done", timeout_s=120)
    }
    end = got["imagen.job.v1.done"]
    start = got.get("imagen.job.v1.started") or pull_for(sub, path, jid, skip=())  # Pub/Sub keeps no order
    assert (
        start.attributes["ce-type"] == "imagen.job.v1.started"
        and start.attributes["ce-id"] == f"{jid}-started-1"
    )
    started, done = event_schemas.check(start), event_schemas.check(end)
    assert started["attempt"] == 1 and started["options"] == done["options"] == {"imagen-format": "png"}
    assert done["output"]["format"] == "PNG"
