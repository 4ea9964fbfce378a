"""on_dead_letter: a job message out of delivery attempts fails its job with the last error."""

from __future__ import annotations

from typing import Any

from . import completion, events, logs
from .config import Config
from .jobs import FAILED
from .services import Services


def failure_reason(job: dict[str, Any]) -> str:
    last = job.get("last_error") or "no error was recorded"
    return f"gave up after {job.get('attempts', 0)} attempts; last error: {last}"


def handle_dead_letter(cfg: Config, svc: Services, event_type: str, data: Any) -> None:
    """Fail the job of a dead-lettered message with its last error.

    While a worker still holds a live lease the dead letter is retried (raise), so a job
    that is still running is never failed under it, and one whose worker died still ends.
    """
    try:
        msg, _ = events.parse_job_message(event_type, data)
    except events.EventError as exc:
        logs.bad_message(str(exc))
        return
    outcome = svc.jobs.give_up(msg.job_id, failure_reason)
    if outcome == FAILED:
        logs.job_failed(msg.job_id, msg.model, failure_reason(svc.jobs.get(msg.job_id) or {}))
    else:
        logs.job_skipped(msg.job_id, outcome)
    completion.announce(cfg, svc, msg.job_id)
