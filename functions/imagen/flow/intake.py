"""An upload becomes a queued job: options checked, job created, message published.

The one step every way in takes: the storage event (on_upload), the HTTP API, the reconciler
for an object whose event was lost, and the CLI's backfill. It needs the job store and the
publisher only (no Triton, no image libraries), so the CLI runs it installed alone.
"""

from __future__ import annotations

from imagen.core import logs, metadata, options, tracing
from imagen.core.names import Resources
from imagen.flow import completion
from imagen.flow.completion import Outbox
from imagen.jobs import messages
from imagen.jobs.messages import JobMessage
from imagen.jobs.model import TERMINAL, JobStatus


def queue_upload(names: Resources, svc: Outbox, upload: messages.Upload, model: str, run: int = 0) -> str:
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
    owner = upload.metadata.get(metadata.OWNER, "")  # written by the HTTP API only
    existing = svc.jobs.create(msg, upload.uri, upload.size, record, refused, run, owner)
    if existing is None:
        if refused:
            logs.job_failed(msg.job_id, model, refused)
        else:
            logs.job_created(msg.job_id, model, upload.name, upload.generation)
    else:
        logs.job_exists(msg.job_id, existing)
    if refused or existing in TERMINAL:  # its event, again if a crash lost it (announce is idempotent)
        completion.announce(names, svc, msg.job_id)
        return msg.job_id
    if existing is not None and existing != JobStatus.QUEUED:
        return msg.job_id
    # Publish for new and still-queued jobs: a crash between create and publish is healed
    # by the storage event's redelivery; workers ignore a second message for the same job.
    svc.publisher.job(msg, tracing.inject())
    return msg.job_id


def result_names(names: Resources, model: str, upload: messages.Upload) -> list[str]:
    """Every name this upload's result may have (its format follows its options and its alpha)."""
    try:
        opts = options.parse(model, upload.metadata)
    except options.OptionError:
        opts = options.Options()
    return [names.result_name(model, upload.name, f.extension) for f in opts.result_formats(model)]
