"""Job events on `imagen-events`, in the CloudEvents Pub/Sub binding (ce-* attributes).

Other pipelines subscribe and chain on them: `imagen.job.v1.started` at each attempt's claim,
then `imagen.job.v1.done` or `imagen.job.v1.failed`, with the job id, model, source object and
result URI as attributes and the job summary as data. Each type's data is described by a JSON
Schema under schemas/events/ (checked by the tests against what is published).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from imagen.cloud.jobstore import DONE, TERMINAL, Claim, is_terminal
from imagen.core import logs
from imagen.core.config import Config
from imagen.core.names import gs_uri
from imagen.flow.services import Services
from imagen.jobs.messages import JobMessage

STARTED_TYPE = "imagen.job.v1.started"
DONE_TYPE = "imagen.job.v1.done"
FAILED_TYPE = "imagen.job.v1.failed"
EVENT_TYPES = (STARTED_TYPE, DONE_TYPE, FAILED_TYPE)
# The data of a done or failed event: these keys of the job document.
SUMMARY_KEYS = (
    "job_id",
    "model",
    "status",
    "source_uri",
    "result_uri",
    "reason",
    "timings",
    "output",
    "attempts",
    "options",
)


def attributes(cfg: Config, event_type: str, job: dict[str, Any], seq: int | None = None) -> dict[str, str]:
    """The ce-* and routing attributes; `seq` numbers the event among its type's for this job
    (by default the job's terminal transitions, so a retried job that ends again is a new event)."""
    job_id = str(job["job_id"])
    if seq is None:
        seq = max(1, sum(1 for h in job.get("history", []) if h.get("status") in TERMINAL))
    return {
        "ce-specversion": "1.0",
        "ce-id": f"{job_id}-{event_type.rsplit('.', 1)[-1]}-{seq}",
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


def summary(job: dict[str, Any]) -> dict[str, Any]:
    """A done or failed event's data: the job's summary (JSON-ready)."""
    out: dict[str, Any] = json.loads(json.dumps({k: job.get(k) for k in SUMMARY_KEYS}, default=str))
    out["options"] = out["options"] or {}
    return out


def publish(cfg: Config, svc: Services, event_type: str, job: dict[str, Any]) -> None:
    """Publish one completion event and wait for the ack (a lost event would break a chain)."""
    svc.publisher.event(json.dumps(summary(job)).encode(), attributes(cfg, event_type, job))


def started(cfg: Config, svc: Services, claim: Claim, msg: JobMessage) -> None:
    """Publish an attempt's start (one event per claim; its ce-id ends in the claim's number,
    which is the attempt's unless an attempt was given back for a service's fault)."""
    job = {
        "job_id": claim.job_id,
        "model": msg.model,
        "status": "running",
        "source_uri": gs_uri(msg.bucket, msg.name),
        "attempt": claim.attempt,
        "options": claim.options,
    }
    svc.publisher.event(
        json.dumps(job).encode(), attributes(cfg, STARTED_TYPE, job, claim.claims or claim.attempt)
    )
