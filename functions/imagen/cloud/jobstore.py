"""Job documents in Firestore and the transitions between their states.

    queued ──claim──▶ running ──▶ done
      ▲                 │  └────▶ failed   (bad input, or the dead-letter handler)
      └──release────────┘                  (transient fault: back to the queue)
      ▲                                     │
      └────────────retry────────────────────┘  (a person asks for a failed job again)

A running job carries a lease that its worker renews while it works; a job whose lease has
expired (the worker died) may be claimed again by the next delivery.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from imagen.jobs.messages import JobMessage


class JobStatus(StrEnum):
    """A job's state; stored in Firestore as its string value."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


QUEUED, RUNNING, DONE, FAILED = JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED
TERMINAL = frozenset({DONE, FAILED})


def is_terminal(job: dict[str, Any] | None) -> bool:
    return job is not None and job.get("status") in TERMINAL


def is_finished(job: dict[str, Any] | None) -> bool:
    """Terminal and its completion event published: the last thing a worker does for a job."""
    return job is not None and is_terminal(job) and bool(job.get("event_published"))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _entry(status: JobStatus, **extra: Any) -> dict[str, Any]:
    return {"status": str(status), "at": now(), **extra}


RUNNING_ELSEWHERE = "running elsewhere"


def lease_live(job: dict[str, Any], at: dt.datetime) -> bool:
    """Whether a worker's claim still holds at `at` (the database's clock)."""
    lease = job.get("lease_until")
    return job.get("status") == RUNNING and lease is not None and lease > at


def spent(job: dict[str, Any]) -> int:
    """Attempts since the job was last queued by a person (`imagen retry` gives a new budget)."""
    return int(job.get("attempts", 0)) - int(job.get("retry_floor", 0))


def gave_up(job: dict[str, Any]) -> str:
    last = job.get("last_error") or "no error was recorded"
    return f"gave up after {spent(job)} attempts; last error: {last}"


WAITING = "waiting"
_NOT_WAITING = {"waiting_for": firestore.DELETE_FIELD, "waiting_since": firestore.DELETE_FIELD}


def _waiting(job: dict[str, Any], service: str, at: dt.datetime) -> dict[str, Any]:
    """The fields of a job that waits for `service` (since the first time it had to)."""
    return {
        "waiting_for": service,
        "waiting_since": job.get("waiting_since") or at,
        "waits": firestore.Increment(1),
    }


def _not_movable(job: dict[str, Any] | None, at: dt.datetime) -> str:
    """Why a delivery must leave the job as it is ("missing", its terminal status, or
    RUNNING_ELSEWHERE); "" when it may move it."""
    if job is None or job.get("status") in TERMINAL:
        return str(job["status"]) if job else "missing"
    return RUNNING_ELSEWHERE if lease_live(job, at) else ""


def waited_too_long(job: dict[str, Any], at: dt.datetime, horizon_s: int) -> bool:
    """Whether the job has waited for a service `horizon_s` since it first had to."""
    since = job.get("waiting_since")
    return since is not None and (at - since).total_seconds() >= horizon_s


def waited_reason(job: dict[str, Any], at: dt.datetime) -> str:
    """The reason of a job failed for waiting past the horizon."""
    hours = (at - job["waiting_since"]).total_seconds() / 3600
    last = job.get("last_error") or "no error was recorded"
    return (
        f"waited {hours:.1f} h for {job.get('waiting_for') or 'a service'} (WAIT_HORIZON_S) and gave up; "
        f"last error: {last}"
    )


def ran_to_timeout(job: dict[str, Any], lease_s: int, function_timeout_s: int) -> str:
    """Why a job must not run again when its last attempt (now dead) was still renewing its lease
    at the function's timeout, so the platform stopped it; "" otherwise. Only its worker's own
    renewals count (`renewed_at`), never the reconciler's re-publishes."""
    started, renewed = job.get("started_at"), job.get("renewed_at")
    if not function_timeout_s or job.get("status") != RUNNING or started is None or renewed is None:
        return ""
    alive_s = (renewed - started).total_seconds()  # to its last renewal
    if alive_s < function_timeout_s - lease_s / 3:  # renewals come every lease_s / 3
        return ""
    plan = job.get("time_plan") or {}
    planned = f"; its plan was {plan['total_s']:.0f} s" if "total_s" in plan else ""
    return (
        f"attempt {job.get('attempts')} ran {alive_s:.0f} s, to the function's timeout of "
        f"{function_timeout_s} s, and was stopped by the platform{planned}; it is not run again"
    )


@dataclass(frozen=True)
class Claim:
    """One worker's hold on one attempt of a job; every later transition is fenced on it."""

    job_id: str
    attempt: int
    holder: str = ""
    options: dict[str, str] = field(default_factory=dict)  # the upload's, as recorded at create
    run: int = 0  # backfill --all runs a finished job again as run + 1
    claims: int = 0  # every claim of the job, given-back attempts included (event ids)


class JobStore:
    """Reads and moves jobs; every transition is a transaction or a create-if-absent."""

    def __init__(self, db: firestore.Client, collection: str) -> None:
        """`collection` comes from Resources.jobs_collection."""
        self.db = db
        self.col = db.collection(collection)
        self._scan = db.collection(f"{collection}_reconciler").document("scan")

    def get(self, job_id: str) -> dict[str, Any] | None:
        snap = self.col.document(job_id).get()
        return snap.to_dict() if snap.exists else None

    def document(self, job_id: str) -> dict[str, Any] | None:
        """The job's stored document as Firestore holds it (what readers of the collection see)."""
        snap = self.col.document(job_id).get()
        return snap.to_dict() if snap.exists else None

    def existing(self, job_ids: list[str]) -> set[str]:
        """Which of these jobs exist (one batched read)."""
        refs = [self.col.document(j) for j in job_ids]
        return {snap.id for snap in self.db.get_all(refs) if snap.exists} if refs else set()

    def scan_cursors(self) -> dict[str, str]:
        """Where the reconciler's scan of each model prefix goes on from (object names)."""
        snap = self._scan.get()
        return dict(snap.to_dict() or {}) if snap.exists else {}

    def save_scan_cursors(self, cursors: dict[str, str]) -> None:
        self._scan.set(cursors)

    def recent(
        self, limit: int, status: JobStatus | None = None, model: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest jobs first, optionally of one status and model."""
        query: Any = self.col
        if status:
            query = query.where(filter=FieldFilter("status", "==", str(status)))
        if model:
            query = query.where(filter=FieldFilter("model", "==", model))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [snap.to_dict() or {} for snap in query.stream()]

    def wait(
        self,
        job_ids: Iterable[str],
        timeout_s: float,
        until: Callable[[dict[str, Any] | None], bool] = is_finished,
        every_s: float = 0.25,
        on_poll: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Poll until every job meets `until` (default: finished) or the timeout passes.

        Returns the last document read of each job that exists (a caller checks the statuses).
        """
        ids = list(dict.fromkeys(job_ids))
        docs: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while True:
            for jid in ids:
                if not until(docs.get(jid)):
                    doc = self.get(jid)
                    if doc is not None:
                        docs[jid] = doc
            if on_poll:
                on_poll(docs)
            if all(until(docs.get(jid)) for jid in ids) or time.monotonic() > deadline:
                return docs
            time.sleep(every_s)

    def _transact(
        self, job_id: str, step: Callable[[dict[str, Any] | None, dt.datetime], dict[str, Any] | None]
    ) -> bool:
        """Read the job, let `step` decide the update (None: no change), write it atomically.

        `step` gets the time of the read by the database's clock, so leases written and compared
        by different instances agree whatever each instance's own clock says.
        """
        ref = self.col.document(job_id)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> bool:
            snap = ref.get(transaction=tx)
            at = snap.read_time or now()
            update = step(snap.to_dict() if snap.exists else None, at)
            if update is None:
                return False
            tx.update(ref, {**update, "updated_at": at})
            return True

        result: bool = run(self.db.transaction())
        return result

    def server_now(self) -> dt.datetime:
        """The database's clock, read once."""
        read_time = self.col.document("_clock").get().read_time
        return read_time or now()

    def create(
        self,
        msg: JobMessage,
        source_uri: str,
        size: int,
        options: dict[str, str] | None = None,
        refused: str = "",
        run: int = 0,
    ) -> str | None:
        """Create the queued job (failed at once with `refused`, when its options were refused);
        returns None if new, else the existing job's status."""
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
            "created_at": now(),
            "updated_at": now(),
            "options": options or {},
            "run": run,
            "history": [_entry(QUEUED)],
        }
        if refused:
            doc.update(status=str(FAILED), reason=refused, finished_at=now(), options_refused=True)
            doc["history"].append(_entry(FAILED, options=True))
        try:
            self.col.document(msg.job_id).create(doc)
            return None
        except gexc.AlreadyExists:
            existing = self.get(msg.job_id) or {}
            return str(existing.get("status", "unknown"))

    def claim(self, job_id: str, lease_s: int, max_attempts: int, function_timeout_s: int = 0) -> Claim | str:
        """Claim the job for this worker; returns the Claim, or why it must not run here.

        While another worker holds a live lease this delivery is not an attempt: it returns
        RUNNING_ELSEWHERE and the message is acknowledged (if that worker has died, the
        reconciler publishes the job again once its lease has run out). A job whose attempts
        are spent is failed here with its last error, and "failed" is returned; so is one whose
        last attempt was still alive at the function's timeout (`function_timeout_s`): the
        platform stopped it, and running it again blind would only meet the same end.
        """
        claimed: list[Claim] = []
        reason: list[str] = []

        def step(job: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
            claimed.clear()
            reason.clear()
            if job is None:
                reason.append("missing")
                return None
            if job.get("status") in TERMINAL:
                reason.append(str(job["status"]))
                return None
            if lease_live(job, at):
                reason.append(RUNNING_ELSEWHERE)
                return None
            if spent(job) >= max_attempts:
                reason.append(str(FAILED))
                return self._terminal(FAILED, {"reason": gave_up(job)}, at, gave_up=True)
            timed_out = ran_to_timeout(job, lease_s, function_timeout_s)
            if timed_out:
                reason.append(str(FAILED))
                return self._terminal(FAILED, {"reason": timed_out}, at, timed_out=True)
            claim = Claim(
                job_id,
                int(job.get("attempts", 0)) + 1,
                uuid.uuid4().hex,
                dict(job.get("options") or {}),
                int(job.get("run", 0)),
                int(job.get("claims", job.get("attempts", 0))) + 1,
            )
            claimed.append(claim)
            return {
                "status": str(RUNNING),
                "attempts": claim.attempt,
                "holder": claim.holder,
                "started_at": at,
                "renewed_at": at,
                "claims": claim.claims,
                "lease_until": at + dt.timedelta(seconds=lease_s),
                "waiting_for": firestore.DELETE_FIELD,
                "history": firestore.ArrayUnion([_entry(RUNNING, attempt=claim.attempt)]),
            }

        self._transact(job_id, step)
        return claimed[0] if claimed else reason[0]

    @staticmethod
    def _holds(job: dict[str, Any] | None, claim: Claim) -> bool:
        """Whether `claim` is still the job's current claim (status, attempt and holder)."""
        return bool(
            job
            and job.get("status") == RUNNING
            and job.get("attempts") == claim.attempt
            and job.get("holder", "") == claim.holder
        )

    def renew(self, claim: Claim, lease_s: int, extra: dict[str, Any] | None = None) -> bool:
        """Extend this worker's lease (with `extra` fields, e.g. the time plan); False if the job
        is no longer its own."""

        def step(job: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
            if not self._holds(job, claim):
                return None
            return {**(extra or {}), "renewed_at": at, "lease_until": at + dt.timedelta(seconds=lease_s)}

        return self._transact(claim.job_id, step)

    @staticmethod
    def _terminal(status: JobStatus, fields: dict[str, Any], at: dt.datetime, **entry: Any) -> dict[str, Any]:
        return {
            **fields,
            "status": str(status),
            "finished_at": at,
            "lease_until": None,
            "history": firestore.ArrayUnion([_entry(status, **entry)]),
        }

    def _waited_out(self, job: dict[str, Any], at: dt.datetime, **fields: Any) -> dict[str, Any]:
        """The update that fails a job for waiting past the horizon."""
        return self._terminal(FAILED, {"reason": waited_reason(job, at), **fields}, at, waited=True)

    def _finish(
        self,
        claim: Claim,
        status: JobStatus,
        fields: dict[str, Any],
        waiting_for: str = "",
        horizon_s: int = 0,
    ) -> bool:
        """Move the job on from this claim: only while the claim is still the job's own.

        Back to the queue `waiting_for` a service, the attempt is given back: the fault was the
        service's, not the job's; unless the job has waited `horizon_s` already: then it fails.
        """

        def step(job: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
            if not self._holds(job, claim):
                return None
            if status == QUEUED:
                update = {
                    **fields,
                    "status": str(QUEUED),
                    "lease_until": None,
                    "history": firestore.ArrayUnion([_entry(QUEUED, attempt=claim.attempt)]),
                }
                if waiting_for:
                    assert job is not None
                    if horizon_s and waited_too_long(job, at, horizon_s):
                        late = {**job, "last_error": fields.get("last_error"), "waiting_for": waiting_for}
                        return self._waited_out(late, at, attempts=claim.attempt - 1)
                    update.update(_waiting(job, waiting_for, at), attempts=claim.attempt - 1)
                    update["history"] = firestore.ArrayUnion(
                        [_entry(QUEUED, attempt=claim.attempt, waiting_for=waiting_for)]
                    )
                return update
            return self._terminal(status, fields, at, attempt=claim.attempt)

        return self._transact(claim.job_id, step)

    def done(
        self,
        claim: Claim,
        result_uri: str,
        model_version: str,
        timings: dict[str, float],
        output: dict[str, Any],
    ) -> bool:
        fields = {
            "result_uri": result_uri,
            "model_version": model_version,
            "timings": timings,
            "output": output,
        }
        return self._finish(claim, DONE, fields)

    def failed(self, claim: Claim, reason: str) -> bool:
        return self._finish(claim, FAILED, {"reason": reason})

    def release(self, claim: Claim, error: str, waiting_for: str = "", horizon_s: int = 0) -> bool:
        """Give a claimed job back to the queue after a transient fault, for the next delivery;
        `waiting_for` a service that was down, without spending the attempt (failed instead
        once it has waited `horizon_s`)."""
        return self._finish(claim, QUEUED, {"last_error": error}, waiting_for, horizon_s)

    def note_waiting(self, job_id: str, service: str, error: str, horizon_s: int) -> str:
        """A delivery turned away unclaimed because `service` is down: the job says so.

        Returns WAITING (the message comes back later), FAILED when the job has waited past
        `horizon_s` (it is failed with that reason), RUNNING_ELSEWHERE, the terminal status it
        already had, or "missing".
        """
        outcome: list[str] = []

        def step(job: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
            outcome[:] = [_not_movable(job, at)]
            if outcome[0] or job is None:
                return None
            if waited_too_long(job, at, horizon_s):
                outcome[0] = str(FAILED)
                return self._waited_out(job, at)
            outcome[0] = WAITING
            return {**_waiting(job, service, at), "last_error": error}

        self._transact(job_id, step)
        return outcome[0]

    def progress(self, job_id: str, fraction: float) -> None:
        self.col.document(job_id).update({"progress": round(fraction, 3)})

    def mark_announced(self, job_id: str) -> None:
        self.col.document(job_id).update({"event_published": True})

    def retry(self, job_id: str) -> JobMessage:
        """Queue a failed job again (one transition); returns the message to publish for it.

        The job is marked `publish_pending` until `published()`: if the publish after this
        transition never happens, the reconciler publishes it. Raises ValueError naming the
        job's status when it is missing or not failed.
        """
        found: list[dict[str, Any]] = []

        def step(job: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
            found.clear()
            if job is None:
                raise ValueError(f"no job {job_id}")
            if job.get("status") != FAILED:
                raise ValueError(f"job {job_id} is {job.get('status')}; only failed jobs can be retried")
            found.append(job)
            return {
                "status": str(QUEUED),
                "retry_floor": int(job.get("attempts", 0)),  # a fresh budget: a person asked for it
                "requeues": 0,
                "publish_pending": True,
                "reason": firestore.DELETE_FIELD,
                "event_published": firestore.DELETE_FIELD,
                **_NOT_WAITING,
                "history": firestore.ArrayUnion([_entry(QUEUED, retry=True)]),
            }

        self._transact(job_id, step)
        return message_of(found[0])

    def rerun(self, job_id: str) -> JobMessage | None:
        """Queue a finished job again as a new run (backfill --all, after a model upgrade).

        Its result is written over (the result records its run); returns the message to
        publish, or None when the job is not finished (queued or running: it runs anyway).
        """
        found: list[dict[str, Any]] = []

        def step(job: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
            found.clear()
            if job is None or job.get("status") not in TERMINAL or job.get("options_refused"):
                return None  # running anyway; or refused for its options, which a rerun would not fix
            found.append(job)
            run = int(job.get("run", 0)) + 1
            return {
                "status": str(QUEUED),
                "run": run,
                "retry_floor": int(job.get("attempts", 0)),
                "requeues": 0,
                "publish_pending": True,
                "reason": firestore.DELETE_FIELD,
                "event_published": firestore.DELETE_FIELD,
                "progress": firestore.DELETE_FIELD,
                "result_uri": firestore.DELETE_FIELD,
                "output": firestore.DELETE_FIELD,
                "timings": firestore.DELETE_FIELD,
                "finished_at": firestore.DELETE_FIELD,
                **_NOT_WAITING,
                "history": firestore.ArrayUnion([_entry(QUEUED, run=run)]),
            }

        self._transact(job_id, step)
        return message_of(found[0]) if found else None

    def published(self, job_id: str) -> None:
        """The job's message is out: nothing for the reconciler to publish."""
        self.col.document(job_id).update({"publish_pending": firestore.DELETE_FIELD})

    def give_up(self, job_id: str, max_attempts: int, horizon_s: int = 0) -> str:
        """What to do with a job whose message ran out of deliveries (the dead-letter path).

        Returns "failed" when its own attempts are spent (it is failed with its last error),
        "requeue" when they are not: a job waiting for a service is published again until it
        has waited `horizon_s`; one whose deliveries were burnt before any claim for another
        reason, at most `max_attempts` times. RUNNING_ELSEWHERE while a worker holds it, or the
        terminal status it already had, or "missing".
        """
        outcome: list[str] = []

        def step(job: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
            outcome[:] = [_not_movable(job, at)]
            if outcome[0] or job is None:
                return None
            outcome.clear()
            requeues = int(job.get("requeues", 0))
            if job.get("waiting_for") and spent(job) < max_attempts:
                if horizon_s and waited_too_long(job, at, horizon_s):
                    outcome.append(str(FAILED))
                    return self._waited_out(job, at)
                outcome.append("requeue")
                return {}  # not counted: a job may wait until the horizon
            if spent(job) < max_attempts and requeues < max_attempts:
                outcome.append("requeue")
                return {"requeues": requeues + 1}
            outcome.append(str(FAILED))
            return self._terminal(FAILED, {"reason": gave_up(job)}, at, dead_letter=True)

        self._transact(job_id, step)
        return outcome[0]

    def stuck(
        self, lease_margin_s: float, publish_grace_s: float, queued_max_s: float
    ) -> list[dict[str, Any]]:
        """Jobs that no message will move on, by the database's clock: running past their lease by
        `lease_margin_s`, or queued with a publish pending for `publish_grace_s`, or queued for
        `queued_max_s` whatever the reason."""
        at = self.server_now()
        expired = self.col.where(filter=FieldFilter("status", "==", str(RUNNING))).where(
            filter=FieldFilter("lease_until", "<", at - dt.timedelta(seconds=lease_margin_s))
        )
        waiting = self.col.where(filter=FieldFilter("status", "==", str(QUEUED))).where(
            filter=FieldFilter("updated_at", "<", at - dt.timedelta(seconds=publish_grace_s))
        )
        out = [snap.to_dict() or {} for snap in expired.stream()]
        for snap in waiting.stream():
            job = snap.to_dict() or {}
            if job.get("publish_pending") or job["updated_at"] < at - dt.timedelta(seconds=queued_max_s):
                out.append(job)
        return out

    def republished(self, job_id: str) -> None:
        """Note a re-publish (and restart the job's waiting clock, so the next pass skips it)."""

        def step(job: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
            if job is None or job.get("status") in TERMINAL:
                return None
            return {
                "publish_pending": firestore.DELETE_FIELD,
                "republished_at": at,
                "republishes": firestore.Increment(1),
                **({"lease_until": at} if job.get("status") == RUNNING else {}),
            }

        self._transact(job_id, step)


def message_of(job: dict[str, Any]) -> JobMessage:
    """The job message that moves this job."""
    return JobMessage(str(job["job_id"]), job["model"], job["bucket"], job["object"], str(job["generation"]))
