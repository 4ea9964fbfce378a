"""Backfill: jobs for the objects already under a model prefix (`imagen backfill`).

Each object under the prefix that has no job gets one, through the same step as its upload
event (options checked, job created, message published); a second run finds every job there
and creates none. With `rerun_all` (after a model upgrade) finished jobs run again as a new
run whose result is written over the old one.

Objects are taken `workers` at a time (each costs a few round trips: its result looked for, the
job created in a transaction, its message published and acknowledged), and jobs are created no
faster than Firestore's 500/50/5 ramp (imagen_cli.ramp). docs/capacity.md has the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from imagen.cloud.objects import ObjectStore
from imagen.core import logs
from imagen.core.names import Resources
from imagen.flow import intake
from imagen.flow.completion import Outbox
from imagen.jobs import messages
from imagen.jobs.model import TERMINAL

from .ramp import Ramp

PAGE = 500  # objects looked up in Firestore at a time
WORKERS = 16  # objects worked on at once


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
    workers: int = WORKERS
    ramp: Ramp = field(default_factory=Ramp)


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
    with ThreadPoolExecutor(max_workers=1 if dry_run else scope.workers) as pool:
        work = _Work(scope, model, dry_run, rerun_all, report, pool)
        for listed in scope.objects.uploads(scope.bucket, f"{model}/{prefix.lstrip('/')}"):
            if messages.route(listed.upload, scope.names.result_prefix)[0] != model:
                continue
            page.append(listed.upload)
            if len(page) == PAGE:
                work.page(page)
                page = []
                if on_progress:
                    on_progress(report)
        work.page(page)
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


@dataclass
class _Work:
    """One backfill's pages: each page's objects looked up at once, then worked on in the pool."""

    scope: Scope
    model: str
    dry_run: bool
    rerun_all: bool
    report: Report
    pool: ThreadPoolExecutor

    def page(self, uploads: list[messages.Upload]) -> None:
        self.report.seen += len(uploads)
        ids = {messages.job_id(u.bucket, u.name, u.generation): u for u in uploads}
        have = self.scope.svc.jobs.existing(list(ids))
        outcomes: Iterable[tuple[str, str]] = self.pool.map(
            lambda item: self.one(item[0], item[1], have), ids.items()
        )
        for kind, name in outcomes:
            if kind == "processed":
                self.report.processed += 1
            elif kind in ("created", "rerun"):
                setattr(self.report, kind, getattr(self.report, kind) + 1)
                self.report.names.append(name)

    def one(self, job_id: str, upload: messages.Upload, have: set[str]) -> tuple[str, str]:
        """What became of one object: created, rerun, processed (its result is there) or skipped."""
        scope, svc = self.scope, self.scope.svc
        if job_id in have:
            if self.rerun_all and _rerun(svc, job_id, self.dry_run):
                return "rerun", upload.name
            return "skipped", upload.name
        if not self.rerun_all and scope.objects.has_result(
            upload, intake.result_names(scope.names, self.model, upload)
        ):
            return "processed", upload.name  # its job document is gone, its result is not
        if not self.dry_run:  # --all: a run no earlier result can carry (its job document was gone)
            scope.ramp.acquire()
            run = time.time_ns() if self.rerun_all else 0
            intake.queue_upload(scope.names, svc, upload, self.model, run=run)
        return "created", upload.name


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
