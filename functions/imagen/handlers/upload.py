"""on_upload: a finalized object under a model prefix becomes a queued job and a job message."""

from __future__ import annotations

from typing import Any

from imagen.core import logs, options, tracing
from imagen.core.config import Config
from imagen.flow import completion
from imagen.flow.services import Services
from imagen.jobs import messages
from imagen.jobs.messages import JobMessage
from imagen.jobs.model import TERMINAL, JobStatus


def handle_upload(cfg: Config, svc: Services, event_type: str, data: Any) -> str | None:
    """Create the job for a finalized upload and publish it; returns the job id, if any."""
    with tracing.span("imagen.on_upload", attributes={"imagen.event_type": event_type}):
        return _upload(cfg, svc, event_type, data)


def _upload(cfg: Config, svc: Services, event_type: str, data: Any) -> str | None:
    try:
        upload = messages.parse_upload(event_type, data)
    except messages.EventError as exc:
        logs.bad_message(str(exc))  # acknowledged: redelivery could never succeed
        return None
    model, reason = messages.route(upload, cfg.names.result_prefix)
    if model is None:
        logs.upload_ignored(upload.name, reason)
        return None
    return queue_upload(cfg, svc, upload, model)


def queue_upload(cfg: Config, svc: Services, upload: messages.Upload, model: str, run: int = 0) -> str:
    """Create the upload's job and publish its message (again, while it is still queued).

    Its options are checked first: a bad one fails the job at once, and nothing is published.
    `run` > 0 (backfill --all) writes over a result an earlier job document left behind.
    """
    msg = JobMessage(
        messages.job_id(upload.bucket, upload.name, upload.generation),
        model,
        upload.bucket,
        upload.name,
        upload.generation,
    )
    try:
        record, refused = options.parse(model, upload.metadata).record(), ""
    except options.OptionError as exc:
        record, refused = {}, str(exc)
    existing = svc.jobs.create(msg, upload.uri, upload.size, record, refused, run)
    if existing is None:
        if refused:
            logs.job_failed(msg.job_id, model, refused)
        else:
            logs.job_created(msg.job_id, model, upload.name, upload.generation)
    else:
        logs.job_exists(msg.job_id, existing)
    if refused or existing in TERMINAL:  # its event, again if a crash lost it (announce is idempotent)
        completion.announce(cfg, svc, msg.job_id)
        return msg.job_id
    if existing is not None and existing != JobStatus.QUEUED:
        return msg.job_id
    # Publish for new and still-queued jobs: a crash between create and publish is healed
    # by the storage event's redelivery; workers ignore a second message for the same job.
    svc.publisher.job(msg, tracing.inject())
    return msg.job_id


def result_names(cfg: Config, model: str, upload: messages.Upload) -> list[str]:
    """Every name this upload's result may have (its format follows its options and its alpha)."""
    try:
        opts = options.parse(model, upload.metadata)
    except options.OptionError:
        opts = options.Options()
    return [cfg.names.result_name(model, upload.name, f.extension) for f in opts.result_formats(model)]
