"""on_reconcile (on a schedule): jobs no message will move on are published again.

A job `running` well past its lease lost its worker (killed, or its deliveries were
acknowledged while that worker still held the lease); a job `queued` whose publish never
happened (a retry whose publish failed) or that has waited far longer than any backoff has no
message in flight. Publishing again is safe: the job store's claim lets one delivery run it,
and a job out of attempts is failed by that claim with its last error.
"""

from __future__ import annotations

from typing import Any

from . import logs
from .config import Config
from .jobs import message_of
from .services import Services


def handle_reconcile(cfg: Config, svc: Services, event_type: str = "", data: Any = None) -> int:
    """One pass; returns how many jobs were published again."""
    stuck = svc.jobs.stuck(
        cfg.reconcile_lease_margin_s, cfg.reconcile_publish_grace_s, cfg.reconcile_queued_max_s
    )
    for job in stuck:
        svc.publisher.job(message_of(job))
        svc.jobs.republished(str(job["job_id"]))
        logs.reconciled(str(job["job_id"]), str(job["model"]), str(job["status"]), "published again")
    return len(stuck)
