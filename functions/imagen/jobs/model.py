"""The job: its states, the outcomes of moving it, and the typed view of its document.

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
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """A job's state; stored in Firestore as its string value."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


TERMINAL = frozenset({JobStatus.DONE, JobStatus.FAILED})
# Every job document carries `shard`, from its id: the indexes on the timestamps that only grow
# lead with it, so their writes spread over SHARDS ranges (Firestore holds one such range to
# about 500 writes a second); the queries over them ask each shard (imagen.cloud.jobqueries).
SHARDS = 4


# Every query over the jobs collection (imagen.cloud.jobqueries), by its shape: the fields it
# filters on for equality, in this order, and the field it orders or ranges on. Each has its
# composite index in terraform/modules/firestore (tests/terraform/test_firestore.py).
QUERIES: frozenset[tuple[tuple[str, ...], str]] = frozenset(
    {
        *((("shard", *eq), "created_at") for eq in ((), ("status",), ("model",), ("model", "status"))),
        *(
            (("shard", "owner", *eq), "created_at")
            for eq in ((), ("status",), ("model",), ("model", "status"))
        ),
        (("shard", "status"), "lease_until"),
        (("shard", "status"), "updated_at"),
        (("shard", "status", "publish_pending"), "updated_at"),
        (("shard",), "updated_at"),  # the console's live feed: what changed since
    }
)


def shard_of(job_id: str) -> int:
    """The job's shard, spread evenly over the ids."""
    return zlib.crc32(job_id.encode()) % SHARDS


class Skip(StrEnum):
    """Why a delivery leaves a job as it is."""

    MISSING = "missing"
    DONE = "done"  # already done
    FAILED = "failed"  # already failed
    RUNNING_ELSEWHERE = "running elsewhere"  # another worker's lease is live


class Outcome(StrEnum):
    """What a transition did to a job that a delivery could move."""

    FAILED_NOW = "failed now"  # attempts spent, timed out, or waited past the horizon
    WAITING = "waiting"  # noted as waiting for a service; its message comes back later
    REQUEUED = "requeued"  # back in the queue after a fault, for its message's next delivery


@dataclass(frozen=True)
class Claim:
    """One worker's hold on one attempt of a job; every later transition is fenced on it."""

    job_id: str
    attempt: int
    holder: str = ""
    options: dict[str, str] = field(default_factory=dict)  # the upload's, as recorded at create
    run: int = 0  # backfill --all runs a finished job again as run + 1
    claims: int = 0  # every claim of the job, given-back attempts included (event ids)


@dataclass(frozen=True)
class Job:
    """A job document, typed. Fields absent from a document take their defaults."""

    job_id: str
    model: str
    bucket: str
    object: str
    generation: str
    status: JobStatus
    source_uri: str = ""
    size_bytes: int = 0
    options: Mapping[str, str] = field(default_factory=dict)
    options_refused: bool = False
    owner: str = ""  # the HTTP API caller who made the upload; "" for any other way in
    shard: int = 0
    run: int = 0
    attempts: int = 0
    claims: int = 0
    retry_floor: int = 0  # attempts at the last person's retry: a fresh budget
    requeues: int = 0  # dead-letter requeues before any claim
    holder: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    renewed_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    expire_at: dt.datetime | None = None  # Firestore's TTL deletes the document after this
    republished_at: dt.datetime | None = None  # the reconciler's last publish of it
    republishes: int = 0
    lease_until: dt.datetime | None = None
    waiting_for: str = ""
    waiting_since: dt.datetime | None = None
    waits: int = 0
    last_error: str = ""
    reason: str = ""
    publish_pending: bool = False
    event_published: bool = False
    progress: float | None = None
    result_uri: str = ""
    model_version: str = ""
    timings: Mapping[str, float] = field(default_factory=dict)
    output: Mapping[str, Any] = field(default_factory=dict)
    time_plan: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Job:
        """The typed view of a stored document (unknown fields are ignored)."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in doc.items() if k in known and v is not None}
        values["status"] = JobStatus(str(doc.get("status", JobStatus.QUEUED)))
        values["generation"] = str(doc.get("generation", ""))
        values["history"] = tuple(doc.get("history") or ())
        for key in ("job_id", "model", "bucket", "object"):
            values[key] = str(doc.get(key, ""))
        return cls(**values)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def spent(self) -> int:
        """Attempts since the job was last queued by a person (`imagen retry` gives a new budget)."""
        return self.attempts - self.retry_floor

    def lease_live(self, at: dt.datetime) -> bool:
        """Whether a worker's claim still holds at `at` (the database's clock)."""
        return self.status == JobStatus.RUNNING and self.lease_until is not None and self.lease_until > at

    def holds(self, claim: Claim) -> bool:
        """Whether `claim` is still the job's current claim (status, attempt and holder)."""
        return (
            self.status == JobStatus.RUNNING
            and self.attempts == claim.attempt
            and self.holder == claim.holder
        )


def is_terminal(doc: Mapping[str, Any] | None) -> bool:
    """For tools reading raw documents: whether the job has ended."""
    return doc is not None and doc.get("status") in TERMINAL


def is_finished(doc: Mapping[str, Any] | None) -> bool:
    """For tools reading raw documents: ended and its completion event published."""
    return is_terminal(doc) and bool(doc and doc.get("event_published"))
