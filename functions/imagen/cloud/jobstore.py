"""Job documents in Firestore: each transition of imagen.jobs.transitions applied in a transaction.

The store reads the job and the database's time, asks the pure transition for its update and
writes it; every timestamp a job carries is that database clock's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from imagen.core import usage
from imagen.core.config import Config
from imagen.jobs import transitions as t
from imagen.jobs.messages import JobMessage
from imagen.jobs.model import TERMINAL, Claim, Job, JobStatus, Outcome, Skip, shard_of

T = TypeVar("T")
Step = Callable[[Job | None, dt.datetime], tuple[T, "t.Update | None"]]


def now() -> dt.datetime:
    """This instance's clock: only where the database gave no read time (never in the emulator)."""
    return dt.datetime.now(dt.UTC)


def database_now(col: firestore.CollectionReference) -> dt.datetime:
    """The database's clock, read once (a read of a document that need not exist)."""
    usage.count(usage.FIRESTORE_READ)
    return col.document("_clock").get().read_time or now()


def to_firestore(update: t.Update, at: dt.datetime, retention: dt.timedelta | None = None) -> dict[str, Any]:
    """A transition's update as Firestore field writes (sentinels for deletes, appends, counters);
    a job it ends expires `retention` later (Firestore's TTL policy on `expire_at` deletes it)."""
    fields: dict[str, Any] = {**update.set, "updated_at": at}
    if retention and update.set.get("status") in TERMINAL:
        fields["expire_at"] = at + retention
    fields.update({name: firestore.DELETE_FIELD for name in update.delete})
    fields.update({name: firestore.Increment(n) for name, n in update.increment.items()})
    if update.history:
        fields["history"] = firestore.ArrayUnion(list(update.history))
    return fields


class JobStore:
    """Reads and moves jobs; every transition is a transaction on the database's clock."""

    def __init__(
        self, db: firestore.Client, collection: str, retention_days: int = Config.job_retention_days
    ) -> None:
        """`collection` comes from Resources.jobs_collection; an ended job is kept `retention_days`
        (0: for ever)."""
        self.db = db
        self.col = db.collection(collection)
        self.retention = dt.timedelta(days=retention_days) if retention_days else None

    def document(self, job_id: str) -> dict[str, Any] | None:
        """The job's stored document as Firestore holds it (what readers of the collection see)."""
        usage.count(usage.FIRESTORE_READ)
        snap = self.col.document(job_id).get()
        return snap.to_dict() if snap.exists else None

    def get(self, job_id: str) -> Job | None:
        doc = self.document(job_id)
        return Job.from_doc(doc) if doc is not None else None

    def existing(self, job_ids: list[str]) -> set[str]:
        """Which of these jobs exist (one batched read)."""
        refs = [self.col.document(j) for j in job_ids]
        usage.count(usage.FIRESTORE_READ, len(refs))
        return {snap.id for snap in self.db.get_all(refs) if snap.exists} if refs else set()

    def server_now(self) -> dt.datetime:
        """The database's clock, read once."""
        return database_now(self.col)

    def _transact(self, job_id: str, step: Step[T]) -> T:
        """Read the job and the database's time, let `step` decide, write its update atomically."""
        ref = self.col.document(job_id)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> T:  # run again when the commit meets contention
            usage.count(usage.FIRESTORE_READ)
            snap = ref.get(transaction=tx)
            at = snap.read_time or now()
            doc = (snap.to_dict() or {}) if snap.exists else None
            result, update = step(Job.from_doc(doc) if doc is not None else None, at)
            if update is not None:
                usage.count(usage.FIRESTORE_WRITE)
                fields = to_firestore(update, at, self.retention)
                if doc is not None and "shard" not in doc:  # a job from before shards
                    fields["shard"] = shard_of(job_id)
                tx.update(ref, fields)
            return result

        return run(self.db.transaction())

    def create(
        self,
        msg: JobMessage,
        source_uri: str,
        size: int,
        options: Mapping[str, str] | None = None,
        refused: str = "",
        run: int = 0,
        owner: str = "",
    ) -> JobStatus | None:
        """Create the queued job (failed at once with `refused`, when its options were refused);
        None if new, else the existing job's status."""
        ref = self.col.document(msg.job_id)

        @firestore.transactional
        def make(tx: firestore.Transaction) -> JobStatus | None:
            usage.count(usage.FIRESTORE_READ)
            snap = ref.get(transaction=tx)
            if snap.exists:
                return Job.from_doc(snap.to_dict() or {}).status
            at = snap.read_time or now()
            usage.count(usage.FIRESTORE_WRITE)
            doc = t.created(msg, at, source_uri, size, options, refused, run, owner)
            if refused and self.retention:
                doc["expire_at"] = at + self.retention
            tx.create(ref, doc)
            return None

        try:
            return make(self.db.transaction())
        except gexc.AlreadyExists:  # created by another delivery between the read and the write
            job = self.get(msg.job_id)
            return job.status if job else None

    def claim(
        self, job_id: str, lease_s: int, max_attempts: int, function_timeout_s: int = 0
    ) -> Claim | Skip | Literal[Outcome.FAILED_NOW]:
        """Claim the job for this worker: the Claim, or why it must not run here (see
        transitions.claim; FAILED_NOW when it was failed instead)."""
        holder = uuid.uuid4().hex
        return self._transact(
            job_id, lambda job, at: t.claim(job, at, holder, lease_s, max_attempts, function_timeout_s)
        )

    def renew(
        self,
        claim: Claim,
        lease_s: int,
        time_plan: Mapping[str, Any] | None = None,
        progress: float | None = None,
    ) -> bool:
        """Extend this worker's lease (recording the time plan and the progress); False if the job
        is no longer its own."""

        def step(job: Job | None, at: dt.datetime) -> tuple[bool, t.Update | None]:
            update = t.renew(job, claim, at, lease_s, time_plan or {}, progress)
            return update is not None, update

        return self._transact(claim.job_id, step)

    def _finish(self, claim: Claim, status: JobStatus, fields: Mapping[str, Any]) -> bool:
        def step(job: Job | None, at: dt.datetime) -> tuple[bool, t.Update | None]:
            update = t.finish(job, claim, at, status, fields)
            return update is not None, update

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
        return self._finish(claim, JobStatus.DONE, fields)

    def failed(self, claim: Claim, reason: str) -> bool:
        return self._finish(claim, JobStatus.FAILED, {"reason": reason})

    def release(self, claim: Claim, error: str, waiting_for: str = "", horizon_s: int = 0) -> Outcome | None:
        """Give a claimed job back to the queue after a transient fault (see transitions.release);
        None when the claim was no longer the job's."""
        return self._transact(
            claim.job_id, lambda job, at: t.release(job, claim, at, error, waiting_for, horizon_s)
        )

    def note_waiting(self, job_id: str, service: str, error: str, horizon_s: int) -> Skip | Outcome:
        """A delivery turned away unclaimed because `service` is down: WAITING (the message comes
        back later), FAILED_NOW past `horizon_s`, or why the job was left as it is."""
        return self._transact(job_id, lambda job, at: t.note_waiting(job, at, service, error, horizon_s))

    def give_up(self, job_id: str, max_attempts: int, horizon_s: int = 0) -> Skip | Outcome:
        """A job whose message ran out of deliveries: FAILED_NOW, REQUEUED, or why it was left."""
        return self._transact(job_id, lambda job, at: t.give_up(job, at, max_attempts, horizon_s))

    def retry(self, job_id: str) -> JobMessage:
        """Queue a failed job again; returns the message to publish for it. The job is marked
        `publish_pending` until `published()` (else the reconciler publishes it). Raises
        ValueError naming the job's status when it is missing or not failed."""

        def step(job: Job | None, at: dt.datetime) -> tuple[JobMessage, t.Update | None]:
            update = t.retry(job, job_id, at)
            assert job is not None
            return t.message_of(job), update

        return self._transact(job_id, step)

    def rerun(self, job_id: str) -> JobMessage | None:
        """Queue a finished job again as a new run (backfill --all); the message to publish, or
        None when the job is not finished or was refused for its options."""

        def step(job: Job | None, at: dt.datetime) -> tuple[JobMessage | None, t.Update | None]:
            update = t.rerun(job, at)
            return (t.message_of(job) if job and update else None), update

        return self._transact(job_id, step)

    def republished(self, job_id: str) -> None:
        """Note a re-publish (and restart the job's waiting clock, so the next pass skips it)."""
        self._transact(job_id, lambda job, at: (None, t.republished(job, at)))

    def progress(self, job_id: str, fraction: float) -> None:
        usage.count(usage.FIRESTORE_WRITE)
        self.col.document(job_id).update({"progress": round(fraction, 3)})

    def mark_announced(self, job_id: str) -> None:
        usage.count(usage.FIRESTORE_WRITE)
        self.col.document(job_id).update({"event_published": True})

    def published(self, job_id: str) -> None:
        """The job's message is out: nothing for the reconciler to publish."""
        usage.count(usage.FIRESTORE_WRITE)
        self.col.document(job_id).update({"publish_pending": firestore.DELETE_FIELD})
