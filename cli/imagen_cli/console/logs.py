"""The console's named log events: one JSON line each on stderr (the terminal that started it)."""

from __future__ import annotations

import json
import sys
from typing import Any


def _emit(severity: str, event: str, message: str, **fields: Any) -> None:
    record = {"severity": severity, "event": event, "message": message, **fields}
    sys.stderr.write(json.dumps(record, default=str) + "\n")
    sys.stderr.flush()


def console_started(port: int, project: str, bucket: str, local: bool) -> None:
    where = "the local stack" if local else f"project {project}"
    _emit(
        "INFO",
        "console_started",
        f"console on 127.0.0.1:{port} for {where}, bucket {bucket}",
        port=port,
        project=project,
        bucket=bucket,
        local=local,
    )


def request_refused(method: str, path: str, reason: str) -> None:
    _emit("WARNING", "console_refused", f"{method} {path} refused: {reason}", path=path, reason=reason)


def job_submitted(job_id: str, model: str, name: str, size: int) -> None:
    _emit(
        "INFO",
        "console_submitted",
        f"job {job_id}: {size} bytes uploaded to {name}",
        job_id=job_id,
        model=model,
        object=name,
        bytes=size,
    )


def job_retried(job_id: str) -> None:
    _emit("INFO", "console_retried", f"job {job_id} queued again from the console", job_id=job_id)


def preview_made(name: str, kind: str, width: int, height: int, ms: float) -> None:
    _emit(
        "INFO",
        "console_preview",
        f"{kind} of {name} ({width}x{height}) in {ms:.0f} ms",
        object=name,
        kind=kind,
        width=width,
        height=height,
        ms=round(ms, 1),
    )


def request_failed(path: str, error: str) -> None:
    _emit("ERROR", "console_error", f"{path}: {error}", path=path, error=error)
