"""Reading what the pipeline published, from a test's own pull subscription."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from emulators.bridge import to_push_body
from imagen.cloud.publisher import Publisher
from imagen.core.names import Resources
from imagen.jobs.messages import JobMessage

STARTED = "imagen.job.v1.started"


def _pulled(sub: Any, path: str, job_id: str, timeout_s: float) -> Iterator[Any]:
    """Messages about `job_id` as they arrive (every message pulled is acknowledged)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        resp = sub.pull(subscription=path, max_messages=10, timeout=5)
        if resp.received_messages:
            sub.acknowledge(subscription=path, ack_ids=[m.ack_id for m in resp.received_messages])
        yield from (m.message for m in resp.received_messages if m.message.attributes.get("job_id") == job_id)


def pull_for(
    sub: Any, path: str, job_id: str, timeout_s: float = 30, skip: tuple[str, ...] = (STARTED,)
) -> Any:
    """The next message about `job_id` whose ce-type is not in `skip` (by default an attempt's
    start: most tests wait for the end); others are dropped."""
    for message in _pulled(sub, path, job_id, timeout_s):
        if message.attributes.get("ce-type") not in skip:
            return message
    raise AssertionError(f"no message for job {job_id} within {timeout_s}s")


def events_for(sub: Any, path: str, job_id: str, last: str, timeout_s: float = 30) -> list[Any]:
    """Every message about `job_id`, in order, up to the first whose ce-type is `last`."""
    found: list[Any] = []
    for message in _pulled(sub, path, job_id, timeout_s):
        found.append(message)
        if message.attributes.get("ce-type") == last:
            return found
    raise AssertionError(f"no {last} event for job {job_id} within {timeout_s}s (got {len(found)} others)")


class _Captured:
    """A publisher client that keeps what it was asked to publish instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **attributes: str) -> Any:
        self.sent.append((topic, data, attributes))
        return _Done()


class _Done:
    def result(self, timeout: float | None = None) -> str:
        return "captured"


def published(msg: JobMessage, names: Resources | None = None) -> tuple[str, bytes, dict[str, str]]:
    """(topic, data, attributes) exactly as the pipeline's Publisher publishes this job message."""
    client = _Captured()
    Publisher(client, names or Resources("p")).job(msg)
    return client.sent[0]


def push_body(
    msg: JobMessage, attempt: int = 1, subscription: str = "projects/p/subscriptions/s"
) -> dict[str, Any]:
    """What a Pub/Sub push subscription posts for one job message: the message the pipeline's
    Publisher would send, turned into a push body by the local stack's bridge (to_push_body)."""
    _, data, attributes = published(msg)
    received = pubsub_v1.types.ReceivedMessage(
        message=pubsub_v1.types.PubsubMessage(
            data=data, attributes=attributes, message_id=f"m-{uuid.uuid4().hex[:8]}"
        ),
        delivery_attempt=attempt,
    )
    _, body = to_push_body(subscription, received)
    parsed: dict[str, Any] = json.loads(body)
    return parsed
