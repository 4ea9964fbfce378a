"""on_upload: a finalized object under a model prefix becomes a queued job and a job message."""

from __future__ import annotations

from typing import Any

from imagen.core import logs, tracing, usage
from imagen.core.config import Config
from imagen.flow import intake
from imagen.flow.services import Services
from imagen.jobs import messages


def handle_upload(cfg: Config, svc: Services, event_type: str, data: Any) -> str | None:
    """Create the job for a finalized upload and publish it; returns the job id, if any."""
    with (
        tracing.span("imagen.on_upload", attributes={"imagen.event_type": event_type}),
        usage.metered("on_upload"),
    ):
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
    job_id = intake.queue_upload(cfg.names, svc, upload, model)
    usage.name_job(job_id, model)
    return job_id
