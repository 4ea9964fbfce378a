"""Completion events on `imagen-events`, in the CloudEvents Pub/Sub binding (ce-* attributes).

Other pipelines subscribe and chain on them: type `imagen.job.v1.done` or `imagen.job.v1.failed`,
with the job id, model, source object and result URI as attributes, the job summary as data.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from . import logs
from .config import Config
from .jobs import DONE, TERMINAL, is_terminal
from .services import Services

DONE_TYPE = "imagen.job.v1.done"
FAILED_TYPE = "imagen.job.v1.failed"


def attributes(cfg: Config, event_type: str, job: dict[str, Any]) -> dict[str, str]:
    job_id = str(job["job_id"])
    # One id per terminal transition: a retried job that ends again is a new event, not a duplicate.
    ends = sum(1 for h in job.get("history", []) if h.get("status") in TERMINAL)
    return {
        "ce-specversion": "1.0",
        "ce-id": f"{job_id}-{event_type.rsplit('.', 1)[-1]}-{max(ends, 1)}",
        "ce-type": event_type,
        "ce-source": f"//imagen/projects/{cfg.project}",
        "ce-subject": f"jobs/{job_id}",
        "ce-time": dt.datetime.now(dt.UTC).isoformat(),
        "ce-datacontenttype": "application/json",
        "job_id": job_id,
        "model": str(job.get("model", "")),
        "source": str(job.get("source_uri", "")),
        "result_uri": str(job.get("result_uri") or ""),
    }


def announce(cfg: Config, svc: Services, job_id: str) -> None:
    """Publish the completion event of a finished job once it is finished (outbox style).

    Called after every terminal transition and whenever a delivery finds the job finished, so
    an event lost to a crash is published by the next delivery: at least once, deduplicate on
    ce-id.
    """
    job = svc.jobs.get(job_id)
    if not job or not is_terminal(job) or job.get("event_published"):
        return
    publish(cfg, svc, DONE_TYPE if job["status"] == DONE else FAILED_TYPE, job)
    svc.jobs.mark_announced(job_id)
    logs.event_published(job_id, str(job["status"]))


def publish(cfg: Config, svc: Services, event_type: str, job: dict[str, Any]) -> None:
    """Publish one completion event and wait for the ack (a lost event would break a chain)."""
    keys = (
        "job_id",
        "model",
        "status",
        "source_uri",
        "result_uri",
        "reason",
        "timings",
        "output",
        "attempts",
    )
    data = json.dumps({k: job.get(k) for k in keys}, default=str).encode()
    svc.publisher.event(data, attributes(cfg, event_type, job))
