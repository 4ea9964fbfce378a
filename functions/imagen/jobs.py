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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from .errors import Transient
from .events import JobMessage


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


def lease_live(job: dict[str, Any]) -> bool:
    lease = job.get("lease_until")
    return job.get("status") == RUNNING and lease is not None and lease > now()


@dataclass(frozen=True)
class Claim:
    job_id: str
    attempt: int


class JobStore:
    """Reads and moves jobs; every transition is a transaction or a create-if-absent."""

    def __init__(self, db: firestore.Client, collection: str) -> None:
        """`collection` comes from Resources.jobs_collection."""
        self.db = db
        self.col = db.collection(collection)

    def get(self, job_id: str) -> dict[str, Any] | None:
        snap = self.col.document(job_id).get()
        return snap.to_dict() if snap.exists else None

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

    def _transact(self, job_id: str, step: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> bool:
        """Read the job, let `step` decide the update (None: no change), write it atomically."""
        ref = self.col.document(job_id)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> bool:
            snap = ref.get(transaction=tx)
            update = step(snap.to_dict() if snap.exists else None)
            if update is None:
                return False
            tx.update(ref, {**update, "updated_at": now()})
            return True

        result: bool = run(self.db.transaction())
        return result

    def create(self, msg: JobMessage, source_uri: str, size: int) -> str | None:
        """Create the queued job; returns None if new, else the existing job's status."""
        doc = {
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
            "history": [_entry(QUEUED)],
        }
        try:
            self.col.document(msg.job_id).create(doc)
            return None
        except gexc.AlreadyExists:
            existing = self.get(msg.job_id) or {}
            return str(existing.get("status", "unknown"))

    def claim(self, job_id: str, lease_s: int) -> Claim | str:
        """Claim the job for this worker; returns the Claim, or why it must not run here.

        Raises Transient while another worker holds a live lease: acknowledging would lose the
        job if that worker has died, so the message comes back until the lease ends.
        """
        claimed: list[Claim] = []
        reason: list[str] = []

        def step(job: dict[str, Any] | None) -> dict[str, Any] | None:
            claimed.clear()
            reason.clear()
            if job is None:
                reason.append("missing")
                return None
            if job.get("status") in TERMINAL:
                reason.append(str(job["status"]))
                return None
            if lease_live(job):
                raise Transient(f"job {job_id} is running on another worker until {job['lease_until']}")
            attempt = int(job.get("attempts", 0)) + 1
            claimed.append(Claim(job_id, attempt))
            return {
                "status": str(RUNNING),
                "attempts": attempt,
                "started_at": now(),
                "lease_until": now() + dt.timedelta(seconds=lease_s),
                "history": firestore.ArrayUnion([_entry(RUNNING, attempt=attempt)]),
            }

        self._transact(job_id, step)
        return claimed[0] if claimed else reason[0]

    def renew(self, claim: Claim, lease_s: int) -> bool:
        """Extend this worker's lease; False if the job is no longer ours."""

        def step(job: dict[str, Any] | None) -> dict[str, Any] | None:
            if not job or job.get("status") != RUNNING or job.get("attempts") != claim.attempt:
                return None
            return {"lease_until": now() + dt.timedelta(seconds=lease_s)}

        return self._transact(claim.job_id, step)

    def _finish(self, claim: Claim, status: JobStatus, fields: dict[str, Any]) -> bool:
        def step(job: dict[str, Any] | None) -> dict[str, Any] | None:
            if not job or job.get("status") in TERMINAL:
                return None
            return {
                **fields,
                "status": str(status),
                "lease_until": None,
                "history": firestore.ArrayUnion([_entry(status, attempt=claim.attempt)]),
            }

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
            "finished_at": now(),
        }
        return self._finish(claim, DONE, fields)

    def failed(self, claim: Claim, reason: str) -> bool:
        return self._finish(claim, FAILED, {"reason": reason, "finished_at": now()})

    def release(self, claim: Claim, error: str) -> bool:
        """Give a claimed job back to the queue after a transient fault, for the next delivery."""
        return self._finish(claim, QUEUED, {"last_error": error})

    def progress(self, job_id: str, fraction: float) -> None:
        self.col.document(job_id).update({"progress": round(fraction, 3)})

    def mark_announced(self, job_id: str) -> None:
        self.col.document(job_id).update({"event_published": True})

    def retry(self, job_id: str) -> JobMessage:
        """Queue a failed job again (one transition); returns the message to publish for it.

        Raises ValueError naming the job's status when it is missing or not failed.
        """
        found: list[dict[str, Any]] = []

        def step(job: dict[str, Any] | None) -> dict[str, Any] | None:
            found.clear()
            if job is None:
                raise ValueError(f"no job {job_id}")
            if job.get("status") != FAILED:
                raise ValueError(f"job {job_id} is {job.get('status')}; only failed jobs can be retried")
            found.append(job)
            return {
                "status": str(QUEUED),
                "reason": firestore.DELETE_FIELD,
                "event_published": firestore.DELETE_FIELD,
                "history": firestore.ArrayUnion([_entry(QUEUED, retry=True)]),
            }

        self._transact(job_id, step)
        job = found[0]
        return JobMessage(job_id, job["model"], job["bucket"], job["object"], str(job["generation"]))

    def give_up(self, job_id: str, reason: Callable[[dict[str, Any]], str]) -> str:
        """Fail an unfinished job whose messages ran out of deliveries (the dead-letter path).

        Returns what happened: "failed", the terminal status it already had, or "missing".
        Raises Transient while a worker holds a live lease, so the dead letter comes back.
        """
        outcome: list[str] = []

        def step(job: dict[str, Any] | None) -> dict[str, Any] | None:
            outcome.clear()
            if job is None or job.get("status") in TERMINAL:
                outcome.append(str(job["status"]) if job else "missing")
                return None
            if lease_live(job):
                raise Transient(f"job {job_id} is still running until {job['lease_until']}")
            outcome.append(str(FAILED))
            return {
                "status": str(FAILED),
                "reason": reason(job),
                "finished_at": now(),
                "lease_until": None,
                "history": firestore.ArrayUnion([_entry(FAILED, dead_letter=True)]),
            }

        self._transact(job_id, step)
        return outcome[0]
