"""Reading what the pipeline published, from a test's own pull subscription."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

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


def push_body(msg: JobMessage, attributes: dict[str, str] | None = None, attempt: int = 1) -> dict[str, Any]:
    """What a Pub/Sub push subscription posts for one job message."""
    return {
        "message": {
            "data": base64.b64encode(msg.encode()).decode(),
            "attributes": attributes or {"job_id": msg.job_id, "model": msg.model},
            "messageId": f"m-{uuid.uuid4().hex[:8]}",
        },
        "subscription": "projects/p/subscriptions/s",
        "deliveryAttempt": attempt,
    }
