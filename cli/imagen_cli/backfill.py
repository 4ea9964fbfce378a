"""Backfill: jobs for the objects already under a model prefix (`imagen backfill`).

Each object under the prefix that has no job gets one, through the same step as its upload
event (options checked, job created, message published); a second run finds every job there
and creates none. With `rerun_all` (after a model upgrade) finished jobs run again as a new
run whose result is written over the old one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from imagen.core import logs
from imagen.core.config import Config
from imagen.flow.services import Services
from imagen.handlers.upload import queue_upload, result_names
from imagen.jobs import messages
from imagen.jobs.model import TERMINAL

PAGE = 500  # objects looked up in Firestore at a time


@dataclass
class Report:
    seen: int = 0  # objects under the prefix that route to the model
    created: int = 0  # jobs created (or, dry run, that would be)
    rerun: int = 0  # finished jobs queued again (rerun_all)
    processed: int = 0  # no job document, but the result is there: left alone
    names: list[str] = field(default_factory=list)  # what a dry run would create or rerun


def backfill(
    cfg: Config,
    svc: Services,
    model: str,
    prefix: str = "",
    dry_run: bool = False,
    rerun_all: bool = False,
    on_progress: Callable[[Report], None] | None = None,
) -> Report:
    report = Report()
    page: list[messages.Upload] = []
    for blob in svc.storage.client.list_blobs(cfg.bucket, prefix=f"{model}/{prefix.lstrip('/')}"):
        upload = messages.parse_upload(messages.STORAGE_FINALIZED, blob._properties)
        if messages.route(upload, cfg.names.result_prefix)[0] != model:
            continue
        page.append(upload)
        if len(page) == PAGE:
            _page(cfg, svc, model, page, dry_run, rerun_all, report)
            page = []
            if on_progress:
                on_progress(report)
    _page(cfg, svc, model, page, dry_run, rerun_all, report)
    logs.backfill(model, report.seen, report.created, report.rerun, dry_run)
    return report


def _page(
    cfg: Config,
    svc: Services,
    model: str,
    uploads: list[messages.Upload],
    dry_run: bool,
    rerun_all: bool,
    report: Report,
) -> None:
    report.seen += len(uploads)
    ids = {messages.job_id(u.bucket, u.name, u.generation): u for u in uploads}
    have = svc.jobs.existing(list(ids))
    for job_id, upload in ids.items():
        if job_id in have:
            if rerun_all and _rerun(svc, job_id, dry_run):
                report.rerun += 1
                report.names.append(upload.name)
            continue
        if not rerun_all and svc.storage.has_result(upload, result_names(cfg, model, upload)):
            report.processed += 1  # its job document is gone, its result is not
            continue
        report.created += 1
        report.names.append(upload.name)
        if not dry_run:  # --all: a run no earlier result can carry (its job document was gone)
            queue_upload(cfg, svc, upload, model, run=time.time_ns() if rerun_all else 0)


def _rerun(svc: Services, job_id: str, dry_run: bool) -> bool:
    if dry_run:
        job = svc.jobs.document(job_id) or {}
        return job.get("status") in TERMINAL and not job.get("options_refused")
    msg = svc.jobs.rerun(job_id)
    if msg is None:
        return False  # queued or running: it is on its way anyway
    svc.publisher.job(msg)
    svc.jobs.published(job_id)
    return True
