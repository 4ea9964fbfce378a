"""Publishing a job's events: its start at each claim, its end once (outbox style)."""

from __future__ import annotations

from typing import Protocol

from imagen.cloud.jobstore import JobStore
from imagen.cloud.publisher import Publisher
from imagen.core import logs
from imagen.core.names import gs_uri
from imagen.jobs import events
from imagen.jobs.messages import JobMessage
from imagen.jobs.model import Claim


class Project(Protocol):
    """Whose events these are: Config and Resources both name the project."""

    @property
    def project(self) -> str: ...


class Outbox(Protocol):
    """What publishing a job's events talks to: the job store and the publisher (the handlers'
    Services has both; the CLI's backfill passes just those)."""

    @property
    def jobs(self) -> JobStore: ...

    @property
    def publisher(self) -> Publisher: ...


def announce(cfg: Project, svc: Outbox, job_id: str) -> None:
    """Publish the completion event of a finished job once it is finished (outbox style).

    Called after every terminal transition and whenever a delivery finds the job finished, so
    an event lost to a crash is published by the next delivery: at least once, deduplicate on
    ce-id. Waits for the ack (a lost event would break a chain).
    """
    job = svc.jobs.get(job_id)
    if job is None or not job.terminal or job.event_published:
        return
    svc.publisher.event(*events.ended(cfg.project, job))
    svc.jobs.mark_announced(job_id)
    logs.event_published(job_id, str(job.status))


def started(cfg: Project, svc: Outbox, claim: Claim, msg: JobMessage) -> None:
    """Publish an attempt's start."""
    svc.publisher.event(*events.started(cfg.project, claim, msg.model, gs_uri(msg.bucket, msg.name)))
