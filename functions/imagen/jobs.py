"""Job documents in Firestore and the transitions between their states.

queued → running → done | failed; a running job whose lease has expired may be claimed again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from .errors import Transient
from .events import JobMessage

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
TERMINAL = (DONE, FAILED)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _entry(status: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "at": now(), **extra}


@dataclass(frozen=True)
class Claim:
    job_id: str
    attempt: int


class JobStore:
    """Reads and moves jobs; every transition is a transaction or a create-if-absent."""

    def __init__(self, db: firestore.Client, collection: str) -> None:
        self.db = db
        self.col = db.collection(collection)

    def get(self, job_id: str) -> dict[str, Any] | None:
        snap = self.col.document(job_id).get()
        return snap.to_dict() if snap.exists else None

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
            "status": QUEUED,
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

        Raises Transient while another worker holds a live lease, so the message comes back
        after that worker either finishes or dies.
        """
        ref = self.col.document(job_id)
        transaction = self.db.transaction()

        @firestore.transactional
        def claim_in(tx: firestore.Transaction) -> Claim | str:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                return "missing"
            job = snap.to_dict() or {}
            status = job.get("status")
            if status in TERMINAL:
                return str(status)
            lease = job.get("lease_until")
            if status == RUNNING and lease is not None and lease > now():
                raise Transient(f"job {job_id} is running on another worker until {lease}")
            attempt = int(job.get("attempts", 0)) + 1
            tx.update(
                ref,
                {
                    "status": RUNNING,
                    "attempts": attempt,
                    "updated_at": now(),
                    "started_at": now(),
                    "lease_until": now() + dt.timedelta(seconds=lease_s),
                    "history": firestore.ArrayUnion([_entry(RUNNING, attempt=attempt)]),
                },
            )
            return Claim(job_id, attempt)

        return claim_in(transaction)

    def _move(self, claim: Claim, fields: dict[str, Any], status: str) -> bool:
        ref = self.col.document(claim.job_id)
        transaction = self.db.transaction()

        @firestore.transactional
        def finish_in(tx: firestore.Transaction) -> bool:
            job = ref.get(transaction=tx).to_dict() or {}
            if job.get("status") in TERMINAL:
                return False
            tx.update(
                ref,
                {
                    **fields,
                    "status": status,
                    "updated_at": now(),
                    "lease_until": None,
                    "history": firestore.ArrayUnion([_entry(status, attempt=claim.attempt)]),
                },
            )
            return True

        return finish_in(transaction)

    def give_up(self, job_id: str, reason: str) -> bool:
        """Fail a job that is not finished (used by the dead-letter handler); False if it was."""
        ref = self.col.document(job_id)
        transaction = self.db.transaction()

        @firestore.transactional
        def give_up_in(tx: firestore.Transaction) -> bool:
            snap = ref.get(transaction=tx)
            job = snap.to_dict() or {}
            if not snap.exists or job.get("status") in TERMINAL:
                return False
            tx.update(
                ref,
                {
                    "status": FAILED,
                    "reason": reason,
                    "updated_at": now(),
                    "finished_at": now(),
                    "lease_until": None,
                    "history": firestore.ArrayUnion([_entry(FAILED, dead_letter=True)]),
                },
            )
            return True

        return give_up_in(transaction)

    def release(self, claim: Claim, error: str) -> bool:
        """Give a claimed job back to the queue after a transient fault, for the next delivery."""
        return self._move(claim, {"last_error": error}, QUEUED)

    def done(
        self,
        claim: Claim,
        result_uri: str,
        model_version: str,
        timings: dict[str, float],
        output: dict[str, Any],
    ) -> bool:
        return self._move(
            claim,
            {
                "result_uri": result_uri,
                "model_version": model_version,
                "timings": timings,
                "output": output,
                "finished_at": now(),
            },
            DONE,
        )

    def failed(self, claim: Claim, reason: str) -> bool:
        return self._move(claim, {"reason": reason, "finished_at": now()}, FAILED)
