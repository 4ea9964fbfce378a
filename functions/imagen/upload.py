"""on_upload: a finalized object under a model prefix becomes a queued job and a job message."""

from __future__ import annotations

from typing import Any

from . import events, logs, tracing
from .config import Config
from .events import JobMessage
from .jobs import QUEUED
from .services import Services


def handle_upload(cfg: Config, svc: Services, event_type: str, data: Any) -> str | None:
    """Create the job for a finalized upload and publish it; returns the job id, if any."""
    with tracing.span("imagen.on_upload", attributes={"imagen.event_type": event_type}):
        return _upload(cfg, svc, event_type, data)


def _upload(cfg: Config, svc: Services, event_type: str, data: Any) -> str | None:
    try:
        upload = events.parse_upload(event_type, data)
    except events.EventError as exc:
        logs.bad_message(str(exc))  # acknowledged: redelivery could never succeed
        return None
    model, reason = events.route(upload, cfg.names.result_prefix)
    if model is None:
        logs.upload_ignored(upload.name, reason)
        return None
    return queue_upload(svc, upload, model)


def queue_upload(svc: Services, upload: events.Upload, model: str) -> str:
    """Create the upload's job and publish its message (again, while it is still queued)."""
    msg = JobMessage(
        events.job_id(upload.bucket, upload.name, upload.generation),
        model,
        upload.bucket,
        upload.name,
        upload.generation,
    )
    existing = svc.jobs.create(msg, upload.uri, upload.size)
    if existing is None:
        logs.job_created(msg.job_id, model, upload.name, upload.generation)
    else:
        logs.job_exists(msg.job_id, existing)
        if existing != QUEUED:
            return msg.job_id
    # Publish for new and still-queued jobs: a crash between create and publish is healed
    # by the storage event's redelivery; workers ignore a second message for the same job.
    svc.publisher.job(msg, tracing.inject())
    return msg.job_id
