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

from imagen.cloud.objects import ObjectStore
from imagen.core import logs
from imagen.core.names import Resources
from imagen.flow import intake
from imagen.flow.completion import Outbox
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


@dataclass(frozen=True)
class Scope:
    """Where a backfill looks and what it talks to: the bucket's objects, and the job store and
    publisher (the CLI's Backend: no Triton client, no function config)."""

    names: Resources
    bucket: str
    objects: ObjectStore
    svc: Outbox


def backfill(
    scope: Scope,
    model: str,
    prefix: str = "",
    dry_run: bool = False,
    rerun_all: bool = False,
    on_progress: Callable[[Report], None] | None = None,
) -> Report:
    report = Report()
    page: list[messages.Upload] = []
    for listed in scope.objects.uploads(scope.bucket, f"{model}/{prefix.lstrip('/')}"):
        if messages.route(listed.upload, scope.names.result_prefix)[0] != model:
            continue
        page.append(listed.upload)
        if len(page) == PAGE:
            _page(scope, model, page, dry_run, rerun_all, report)
            page = []
            if on_progress:
                on_progress(report)
    _page(scope, model, page, dry_run, rerun_all, report)
    logs.emit(
        "INFO",
        "backfill",
        f"backfill {model}: {report.seen} objects seen, {report.created} jobs created, "
        f"{report.rerun} run again" + (" (dry run: nothing changed)" if dry_run else ""),
        model=model,
        seen=report.seen,
        created=report.created,
        rerun=report.rerun,
        dry_run=dry_run,
    )
    return report


def _page(
    scope: Scope,
    model: str,
    uploads: list[messages.Upload],
    dry_run: bool,
    rerun_all: bool,
    report: Report,
) -> None:
    svc = scope.svc
    report.seen += len(uploads)
    ids = {messages.job_id(u.bucket, u.name, u.generation): u for u in uploads}
    have = svc.jobs.existing(list(ids))
    for job_id, upload in ids.items():
        if job_id in have:
            if rerun_all and _rerun(svc, job_id, dry_run):
                report.rerun += 1
                report.names.append(upload.name)
            continue
        if not rerun_all and scope.objects.has_result(
            upload, intake.result_names(scope.names, model, upload)
        ):
            report.processed += 1  # its job document is gone, its result is not
            continue
        report.created += 1
        report.names.append(upload.name)
        if not dry_run:  # --all: a run no earlier result can carry (its job document was gone)
            intake.queue_upload(scope.names, svc, upload, model, run=time.time_ns() if rerun_all else 0)


def _rerun(svc: Outbox, job_id: str, dry_run: bool) -> bool:
    if dry_run:
        job = svc.jobs.document(job_id) or {}
        return job.get("status") in TERMINAL and not job.get("options_refused")
    msg = svc.jobs.rerun(job_id)
    if msg is None:
        return False  # queued or running: it is on its way anyway
    svc.publisher.job(msg)
    svc.jobs.published(job_id)
    return True
