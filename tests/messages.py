"""Reading what the pipeline published, from a test's own pull subscription."""

from __future__ import annotations

import time
from typing import Any


def pull_for(sub: Any, path: str, job_id: str, timeout_s: float = 30) -> Any:
    """The next message about `job_id` on the subscription (others are acknowledged and dropped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        resp = sub.pull(subscription=path, max_messages=10, timeout=5)
        if resp.received_messages:
            sub.acknowledge(subscription=path, ack_ids=[m.ack_id for m in resp.received_messages])
        for m in resp.received_messages:
            if m.message.attributes.get("job_id") == job_id:
                return m.message
    raise AssertionError(f"no message for job {job_id} within {timeout_s}s")
