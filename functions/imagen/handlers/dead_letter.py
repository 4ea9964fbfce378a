"""on_dead_letter: a job message out of delivery attempts fails its job with the last error."""

from __future__ import annotations

from typing import Any

from imagen.core import logs, usage
from imagen.core.config import Config
from imagen.flow import completion
from imagen.flow.services import Services
from imagen.jobs import messages
from imagen.jobs.model import Outcome


def handle_dead_letter(cfg: Config, svc: Services, event_type: str, data: Any) -> None:
    """A job message out of deliveries: fail the job only when its own attempts are spent.

    Deliveries burnt before any claim (Triton down, a duplicate message, a store that was
    unreachable) leave attempts in the job: its message is published again instead; a job
    waiting for a service, until it has waited WAIT_HORIZON_S. A job a worker holds is left
    to that worker (and to the reconciler, should it die).
    """
    with usage.metered("on_dead_letter"):
        _dead_letter(cfg, svc, event_type, data)


def _dead_letter(cfg: Config, svc: Services, event_type: str, data: Any) -> None:
    try:
        msg, _ = messages.parse_job_message(event_type, data)
    except messages.EventError as exc:
        logs.bad_message(str(exc))
        return
    usage.name_job(msg.job_id, msg.model)
    outcome = svc.jobs.give_up(msg.job_id, cfg.max_attempts, cfg.wait_horizon_s)
    if outcome is Outcome.FAILED_NOW:
        job = svc.jobs.get(msg.job_id)
        logs.job_failed(msg.job_id, msg.model, job.reason if job else "")
    elif outcome is Outcome.REQUEUED:
        svc.publisher.job(msg)
        logs.job_requeued(msg.job_id, msg.model, "dead-lettered before its attempts were spent")
    else:
        logs.job_skipped(msg.job_id, outcome)
    completion.announce(cfg, svc, msg.job_id)
