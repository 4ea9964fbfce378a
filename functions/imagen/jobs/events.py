"""The job events imagen publishes on `imagen-events`, in the CloudEvents Pub/Sub binding.

Other pipelines subscribe and chain on them: `imagen.job.v1.started` at each attempt's claim,
then `imagen.job.v1.done` or `imagen.job.v1.failed`, with the job id, model, source object and
result URI as attributes and the job summary as data. Each type's data is described by a JSON
Schema under schemas/events/ (checked by the tests against what is published).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from imagen.jobs.model import Claim, Job, JobStatus

STARTED_TYPE = "imagen.job.v1.started"
DONE_TYPE = "imagen.job.v1.done"
FAILED_TYPE = "imagen.job.v1.failed"
EVENT_TYPES = (STARTED_TYPE, DONE_TYPE, FAILED_TYPE)
# The data of a done or failed event: these fields of the job.
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


def attributes(project: str, event_type: str, summary: dict[str, Any], seq: int) -> dict[str, str]:
    """The ce-* and routing attributes; `seq` numbers the event among its type's for this job."""
    job_id = str(summary["job_id"])
    return {
        "ce-specversion": "1.0",
        "ce-id": f"{job_id}-{event_type.rsplit('.', 1)[-1]}-{seq}",
        "ce-type": event_type,
        "ce-source": f"//imagen/projects/{project}",
        "ce-subject": f"jobs/{job_id}",
        "ce-time": dt.datetime.now(dt.UTC).isoformat(),
        "ce-datacontenttype": "application/json",
        "job_id": job_id,
        "model": str(summary.get("model", "")),
        "source": str(summary.get("source_uri", "")),
        "result_uri": str(summary.get("result_uri") or ""),
    }


def ended(project: str, job: Job) -> tuple[bytes, dict[str, str]]:
    """A finished job's done or failed event: its data and attributes. Numbered by the job's
    terminal transitions, so a retried job that ends again is a new event."""
    data: dict[str, Any] = json.loads(json.dumps({k: getattr(job, k) for k in SUMMARY_KEYS}, default=_plain))
    data["options"] = data["options"] or {}
    for absent in ("reason", "result_uri", "timings", "output"):  # null where the job has none
        data[absent] = data[absent] or None
    seq = max(1, sum(1 for h in job.history if h.get("status") in {JobStatus.DONE, JobStatus.FAILED}))
    event_type = DONE_TYPE if job.status == JobStatus.DONE else FAILED_TYPE
    return json.dumps(data).encode(), attributes(project, event_type, data, seq)


def started(project: str, claim: Claim, model: str, source_uri: str) -> tuple[bytes, dict[str, str]]:
    """An attempt's start: one event per claim, its ce-id ending in the claim's number (the
    attempt's, unless an attempt was given back for a service's fault)."""
    data = {
        "job_id": claim.job_id,
        "model": model,
        "status": "running",
        "source_uri": source_uri,
        "attempt": claim.attempt,
        "options": claim.options,
    }
    return json.dumps(data).encode(), attributes(project, STARTED_TYPE, data, claim.claims or claim.attempt)


def _plain(value: Any) -> Any:
    return dict(value) if hasattr(value, "items") else str(value)
