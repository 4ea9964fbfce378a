"""Each move of a job as a pure function of (job, now) to the update it makes.

The job store reads the job and the database's time in a transaction, calls one of these and
writes the Update it returns (None: nothing to write). Every time here is that one clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from imagen.jobs.messages import JobMessage
from imagen.jobs.model import Claim, Job, JobStatus, Outcome, Skip, shard_of

QUEUED, RUNNING, DONE, FAILED = JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED


@dataclass(frozen=True)
class Update:
    """Fields to set, fields to delete, history entries to append and counters to add to."""

    set: Mapping[str, Any] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    increment: Mapping[str, int] = field(default_factory=dict)


def entry(status: JobStatus, at: dt.datetime, **extra: Any) -> dict[str, Any]:
    """One history entry."""
    return {"status": str(status), "at": at, **extra}


def created(
    msg: JobMessage,
    at: dt.datetime,
    source_uri: str,
    size: int,
    options: Mapping[str, str] | None = None,
    refused: str = "",
    run: int = 0,
    owner: str = "",
) -> dict[str, Any]:
    """The document of a new job: queued, or failed at once with `refused` (its options);
    `owner` is the API caller who made the upload ("" for any other way in)."""
    doc: dict[str, Any] = {
        "job_id": msg.job_id,
        "model": msg.model,
        "bucket": msg.bucket,
        "object": msg.name,
        "generation": msg.generation,
        "source_uri": source_uri,
        "size_bytes": size,
        "status": str(QUEUED),
        "attempts": 0,
        "created_at": at,
        "updated_at": at,
        "options": dict(options or {}),
        "run": run,
        "history": [entry(QUEUED, at)],
        "shard": shard_of(msg.job_id),
    }
    if owner:
        doc["owner"] = owner
    if refused:
        doc.update(status=str(FAILED), reason=refused, finished_at=at, options_refused=True)
        doc["history"].append(entry(FAILED, at, options=True))
    return doc


def not_movable(job: Job | None, at: dt.datetime) -> Skip | None:
    """Why a delivery must leave the job as it is; None when it may move it."""
    if job is None:
        return Skip.MISSING
    if job.terminal:
        return Skip(str(job.status))
    return Skip.RUNNING_ELSEWHERE if job.lease_live(at) else None


def gave_up(job: Job) -> str:
    last = job.last_error or "no error was recorded"
    return f"gave up after {job.spent} attempts; last error: {last}"


def waited_too_long(job: Job | None, at: dt.datetime, horizon_s: int) -> bool:
    """Whether the job has waited for a service `horizon_s` since it first had to."""
    since = job.waiting_since if job else None
    return bool(horizon_s) and since is not None and (at - since).total_seconds() >= horizon_s


def waited_reason(job: Job, at: dt.datetime) -> str:
    """The reason of a job failed for waiting past the horizon."""
    hours = (at - job.waiting_since).total_seconds() / 3600 if job.waiting_since else 0.0
    last = job.last_error or "no error was recorded"
    return (
        f"waited {hours:.1f} h for {job.waiting_for or 'a service'} (WAIT_HORIZON_S) and gave up; "
        f"last error: {last}"
    )


def ran_to_timeout(job: Job, lease_s: int, function_timeout_s: int) -> str:
    """Why a job must not run again when its last attempt (now dead) was still renewing its lease
    at the function's timeout, so the platform stopped it; "" otherwise. Only its worker's own
    renewals count (`renewed_at`), never the reconciler's re-publishes."""
    started, renewed = job.started_at, job.renewed_at
    if not function_timeout_s or job.status != RUNNING or started is None or renewed is None:
        return ""
    alive_s = (renewed - started).total_seconds()  # to its last renewal
    if alive_s < function_timeout_s - lease_s / 3:  # renewals come every lease_s / 3
        return ""
    planned = f"; its plan was {job.time_plan['total_s']:.0f} s" if "total_s" in job.time_plan else ""
    return (
        f"attempt {job.attempts} ran {alive_s:.0f} s, to the function's timeout of "
        f"{function_timeout_s} s, and was stopped by the platform{planned}; it is not run again"
    )


def terminal(status: JobStatus, at: dt.datetime, fields: Mapping[str, Any], **history: Any) -> Update:
    """The update that ends a job."""
    return Update(
        {**fields, "status": str(status), "finished_at": at, "lease_until": None},
        history=(entry(status, at, **history),),
    )


def _waited_out(job: Job, at: dt.datetime, **fields: Any) -> Update:
    return terminal(FAILED, at, {"reason": waited_reason(job, at), **fields}, waited=True)


def _waiting(job: Job, service: str, at: dt.datetime) -> tuple[dict[str, Any], dict[str, int]]:
    """The fields (and the counter) of a job that waits for `service`, since it first had to."""
    return {"waiting_for": service, "waiting_since": job.waiting_since or at}, {"waits": 1}


def claim(
    job: Job | None,
    at: dt.datetime,
    holder: str,
    lease_s: int,
    max_attempts: int,
    function_timeout_s: int = 0,
) -> tuple[Claim | Skip | Literal[Outcome.FAILED_NOW], Update | None]:
    """A delivery's claim: the Claim, or why it must not run here.

    A job whose attempts are spent is failed here with its last error; so is one whose last
    attempt was still alive at the function's timeout: the platform stopped it, and running it
    again blind would only meet the same end.
    """
    skip = not_movable(job, at)
    if skip or job is None:
        return skip or Skip.MISSING, None
    if job.spent >= max_attempts:
        return Outcome.FAILED_NOW, terminal(FAILED, at, {"reason": gave_up(job)}, gave_up=True)
    timed_out = ran_to_timeout(job, lease_s, function_timeout_s)
    if timed_out:
        return Outcome.FAILED_NOW, terminal(FAILED, at, {"reason": timed_out}, timed_out=True)
    new = Claim(
        job.job_id, job.attempts + 1, holder, dict(job.options), job.run, (job.claims or job.attempts) + 1
    )
    update = Update(
        {
            "status": str(RUNNING),
            "attempts": new.attempt,
            "holder": new.holder,
            "started_at": at,
            "renewed_at": at,
            "claims": new.claims,
            "lease_until": at + dt.timedelta(seconds=lease_s),
        },
        delete=("waiting_for",),
        history=(entry(RUNNING, at, attempt=new.attempt),),
    )
    return new, update


def renew(
    job: Job | None,
    held: Claim,
    at: dt.datetime,
    lease_s: int,
    time_plan: Mapping[str, Any],
    progress: float | None = None,
) -> Update | None:
    """Extend the worker's lease (recording the job's time plan once, and its progress so far);
    None once it is not its own."""
    if job is None or not job.holds(held):
        return None
    fields: dict[str, Any] = {"renewed_at": at, "lease_until": at + dt.timedelta(seconds=lease_s)}
    if time_plan:
        fields["time_plan"] = dict(time_plan)
    if progress is not None:
        fields["progress"] = progress
    return Update(fields)


def finish(
    job: Job | None, held: Claim, at: dt.datetime, status: JobStatus, fields: Mapping[str, Any]
) -> Update | None:
    """End the job from this claim (done or failed); None once the claim is not the job's."""
    if job is None or not job.holds(held):
        return None
    return terminal(status, at, fields, attempt=held.attempt)


def release(
    job: Job | None, held: Claim, at: dt.datetime, error: str, waiting_for: str = "", horizon_s: int = 0
) -> tuple[Outcome | None, Update | None]:
    """Give a claimed job back to the queue after a transient fault, for the next delivery.

    `waiting_for` a service that was down, the attempt is given back (the fault was the
    service's), unless the job has waited `horizon_s` already: then it fails. None, None once
    the claim is not the job's.
    """
    if job is None or not job.holds(held):
        return None, None
    if not waiting_for:
        return Outcome.REQUEUED, Update(
            {"last_error": error, "status": str(QUEUED), "lease_until": None},
            history=(entry(QUEUED, at, attempt=held.attempt),),
        )
    given_back = held.attempt - 1
    if waited_too_long(job, at, horizon_s):
        late = dataclasses.replace(job, last_error=error, waiting_for=waiting_for)  # the reason's words
        return Outcome.FAILED_NOW, _waited_out(late, at, attempts=given_back)
    fields, counters = _waiting(job, waiting_for, at)
    return Outcome.WAITING, Update(
        {**fields, "last_error": error, "status": str(QUEUED), "lease_until": None, "attempts": given_back},
        history=(entry(QUEUED, at, attempt=held.attempt, waiting_for=waiting_for),),
        increment=counters,
    )


def note_waiting(
    job: Job | None, at: dt.datetime, service: str, error: str, horizon_s: int
) -> tuple[Skip | Outcome, Update | None]:
    """A delivery turned away unclaimed because `service` is down: the job says so (WAITING), or
    fails once it has waited past `horizon_s` (FAILED_NOW)."""
    skip = not_movable(job, at)
    if skip or job is None:
        return skip or Skip.MISSING, None
    if waited_too_long(job, at, horizon_s):
        return Outcome.FAILED_NOW, _waited_out(job, at)
    fields, counters = _waiting(job, service, at)
    return Outcome.WAITING, Update({**fields, "last_error": error}, increment=counters)


def give_up(
    job: Job | None, at: dt.datetime, max_attempts: int, horizon_s: int = 0
) -> tuple[Skip | Outcome, Update | None]:
    """A job whose message ran out of deliveries (the dead-letter path).

    FAILED_NOW when its own attempts are spent (failed with its last error); REQUEUED when they
    are not: a job waiting for a service is published again until it has waited `horizon_s`,
    one whose deliveries were burnt before any claim for another reason at most `max_attempts`
    times.
    """
    skip = not_movable(job, at)
    if skip or job is None:
        return skip or Skip.MISSING, None
    if job.waiting_for and job.spent < max_attempts:
        if waited_too_long(job, at, horizon_s):
            return Outcome.FAILED_NOW, _waited_out(job, at)
        return Outcome.REQUEUED, Update()  # not counted: a job may wait until the horizon
    if job.spent < max_attempts and job.requeues < max_attempts:
        return Outcome.REQUEUED, Update({"requeues": job.requeues + 1})
    return Outcome.FAILED_NOW, terminal(FAILED, at, {"reason": gave_up(job)}, dead_letter=True)


_QUEUED_AGAIN = ("reason", "event_published", "waiting_for", "waiting_since", "expire_at")


def _queued_again(
    job: Job, at: dt.datetime, delete: tuple[str, ...] = (), run: int | None = None, **history: Any
) -> Update:
    """A person's new start for a finished job: a fresh attempt budget, its message pending;
    as a new `run` for backfill --all."""
    if run is not None:
        history["run"] = run
    return Update(
        {
            "status": str(QUEUED),
            "retry_floor": job.attempts,
            "requeues": 0,
            "publish_pending": True,
            **({"run": run} if run is not None else {}),
        },
        delete=_QUEUED_AGAIN + delete,
        history=(entry(QUEUED, at, **history),),
    )


def retry(job: Job | None, job_id: str, at: dt.datetime) -> Update:
    """Queue a failed job again; raises ValueError naming the status of one that is not failed."""
    if job is None:
        raise ValueError(f"no job {job_id}")
    if job.status != FAILED:
        raise ValueError(f"job {job_id} is {job.status}; only failed jobs can be retried")
    return _queued_again(job, at, retry=True)


def rerun(job: Job | None, at: dt.datetime) -> Update | None:
    """Queue a finished job again as a new run (its result is written over); None when it is not
    finished (it runs anyway) or was refused for its options (a rerun would not fix them)."""
    if job is None or not job.terminal or job.options_refused:
        return None
    gone = ("progress", "result_uri", "output", "timings", "finished_at")
    return _queued_again(job, at, gone, run=job.run + 1)


def republished(job: Job | None, at: dt.datetime) -> Update | None:
    """Note a re-publish by the reconciler (restarting the job's waiting clock)."""
    if job is None or job.terminal:
        return None
    return Update(
        {"republished_at": at, **({"lease_until": at} if job.status == RUNNING else {})},
        delete=("publish_pending",),
        increment={"republishes": 1},
    )


def message_of(job: Job) -> JobMessage:
    """The job message that moves this job."""
    return JobMessage(job.job_id, job.model, job.bucket, job.object, job.generation)
