"""The named log events the functions emit: one JSON line each, in Cloud Logging's format."""

from __future__ import annotations

import json
import sys
from typing import Any

from imagen.core import tracing

_project = ""  # for the trace field: set once by the entry module


def configure(project: str) -> None:
    """The project the log lines' trace field names."""
    global _project
    _project = project


def _emit(severity: str, event: str, message: str, **fields: Any) -> None:
    record = {"severity": severity, "event": event, "message": message, **fields}
    trace_id = tracing.trace_id()
    if trace_id:  # Cloud Logging groups the lines of one trace
        record["logging.googleapis.com/trace"] = f"projects/{_project}/traces/{trace_id}"
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def upload_ignored(name: str, reason: str) -> None:
    _emit("INFO", "upload_ignored", f"{name}: not a job ({reason})", object=name, reason=reason)


def api_upload(job_id: str, model: str, name: str, size: int, owner: str) -> None:
    _emit(
        "INFO",
        "api_upload",
        f"job {job_id}: {size} bytes written to {name} through the API by {owner}",
        job_id=job_id,
        model=model,
        object=name,
        bytes=size,
        owner=owner,
    )


def api_error(path: str, error: str, error_id: str) -> None:
    """A fault behind an API answer; the caller was given `error_id` ("" for /health)."""
    _emit("ERROR", "api_error", f"HTTP API {path}: {error}", path=path, error=error, error_id=error_id)


def usage(function: str, job_id: str, model: str, ops: dict[str, int], cpu_s: float, wall_s: float) -> None:
    """What one function call asked of the services (imagen.core.usage), and its own CPU time."""
    _emit(
        "INFO",
        "usage",
        f"{function}{' job ' + job_id if job_id else ''}: "
        + ", ".join(f"{n} {op}" for op, n in ops.items() if n)
        + f"; {cpu_s:.3f} CPU-s",
        function=function,
        job_id=job_id,
        model=model,
        ops=ops,
        cpu_s=cpu_s,
        wall_s=wall_s,
    )


def api_unauthenticated(path: str, reason: str) -> None:
    _emit("WARNING", "api_unauthenticated", f"HTTP API {path}: refused, {reason}", path=path, reason=reason)


def job_created(job_id: str, model: str, name: str, generation: str) -> None:
    _emit(
        "INFO",
        "job_created",
        f"job {job_id} queued for {model}",
        job_id=job_id,
        model=model,
        object=name,
        generation=generation,
    )


def job_exists(job_id: str, status: str) -> None:
    _emit(
        "INFO", "job_exists", f"job {job_id} already {status}; duplicate event", job_id=job_id, status=status
    )


def job_skipped(job_id: str, status: str) -> None:
    _emit(
        "INFO",
        "job_skipped",
        f"job {job_id} is {status}; delivery acknowledged",
        job_id=job_id,
        status=status,
    )


def job_started(job_id: str, model: str, attempt: int) -> None:
    _emit(
        "INFO", "job_started", f"job {job_id} running on {model}", job_id=job_id, model=model, attempt=attempt
    )


def job_done(job_id: str, model: str, result_uri: str, timings: dict[str, float]) -> None:
    _emit(
        "INFO",
        "job_done",
        f"job {job_id} done: {result_uri}",
        job_id=job_id,
        model=model,
        result_uri=result_uri,
        timings=timings,
    )


def job_failed(job_id: str, model: str, reason: str) -> None:
    _emit("ERROR", "job_failed", f"job {job_id} failed: {reason}", job_id=job_id, model=model, reason=reason)


def job_retrying(job_id: str, model: str, error: str) -> None:
    _emit(
        "WARNING",
        "job_retrying",
        f"job {job_id} hit a transient fault: {error}",
        job_id=job_id,
        model=model,
        error=error,
    )


def bad_message(reason: str) -> None:
    _emit("ERROR", "bad_message", f"unusable message dropped: {reason}", reason=reason)


def lease_renewal_failed(job_id: str, error: str) -> None:
    _emit("WARNING", "lease_renewal_failed", f"job {job_id}: {error}", job_id=job_id, error=error)


def result_written(job_id: str, uri: str, generation: int, size: int) -> None:
    _emit(
        "INFO",
        "result_written",
        f"job {job_id} wrote {uri}",
        job_id=job_id,
        result_uri=uri,
        generation=generation,
        bytes=size,
    )


def event_published(job_id: str, status: str) -> None:
    _emit(
        "INFO",
        "event_published",
        f"job {job_id} {status}: completion event published",
        job_id=job_id,
        status=status,
    )


def job_requeued(job_id: str, model: str, why: str) -> None:
    _emit(
        "WARNING", "job_requeued", f"job {job_id} published again: {why}", job_id=job_id, model=model, why=why
    )


def reconciled(job_id: str, model: str, status: str, action: str) -> None:
    _emit(
        "WARNING",
        "job_reconciled",
        f"job {job_id} ({status}) {action}",
        job_id=job_id,
        model=model,
        status=status,
        action=action,
    )


def reconcile_failed(job_id: str, model: str, error: str) -> None:
    _emit(
        "ERROR",
        "reconcile_failed",
        f"job {job_id}: the reconciler could not act on it this pass ({error})",
        job_id=job_id,
        model=model,
        error=error,
    )


def service_down(service: str, error: str, down_s: float) -> None:
    """A worker found a service down, or probed it and found it still down (bounded rate)."""
    _emit(
        "WARNING",
        "service_down",
        f"{service} is down ({error}); jobs wait for it, spending no attempts",
        service=service,
        error=error,
        down_s=round(down_s, 1),
    )


def service_up(service: str, down_s: float) -> None:
    """A worker's probe found the service answering again."""
    _emit(
        "INFO",
        "service_up",
        f"{service} answers again after {down_s:.0f} s",
        service=service,
        down_s=round(down_s, 1),
    )


def job_waiting(job_id: str, model: str, service: str, error: str) -> None:
    """A delivery left the job queued for a service that is down (no attempt spent)."""
    _emit(
        "WARNING",
        "job_waiting",
        f"job {job_id} waits for {service}: {error}",
        job_id=job_id,
        model=model,
        service=service,
        error=error,
    )


def emit(severity: str, event: str, message: str, **fields: Any) -> None:
    """One structured line in this vocabulary, for the tools (imagen backfill)."""
    _emit(severity, event, message, **fields)
