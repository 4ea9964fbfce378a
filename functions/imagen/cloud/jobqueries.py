"""Queries over the jobs collection: the newest jobs for tools, the stuck ones for the
reconciler, and where the reconciler's scan of each model prefix goes on from.

Every query here asks each shard (imagen.jobs.model.SHARDS) and has a composite index in
terraform/modules/firestore that leads with `shard`: each is built by `_query` from a shape
listed in imagen.jobs.model.QUERIES, which the Terraform tests hold against the indexes."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from imagen.cloud.jobstore import database_now
from imagen.core import usage
from imagen.jobs.model import QUERIES, SHARDS, Job, JobStatus

T = TypeVar("T")
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)
STUCK_MAX = 250  # jobs of each kind and shard one reconciler pass takes: 4 x 3 x 250 at most


class JobQueries:
    """Reads across jobs (never moves one: that is the JobStore's)."""

    def __init__(self, db: firestore.Client, collection: str) -> None:
        self.col = db.collection(collection)
        self._scan = db.collection(f"{collection}_reconciler").document("scan")

    def recent(
        self,
        limit: int,
        status: JobStatus | None = None,
        model: str | None = None,
        owner: str | None = None,
    ) -> list[dict[str, Any]]:
        """The newest job documents first, optionally of one status, model and owner: the newest
        `limit` of each shard, merged (SHARDS x limit reads at most)."""
        found: list[dict[str, Any]] = []
        given = {"owner": owner, "model": model, "status": status and str(status)}
        for shard in range(SHARDS):
            equal = {"shard": shard, **{k: v for k, v in given.items() if v}}
            query = self._query(equal, "created_at").order_by(
                "created_at", direction=firestore.Query.DESCENDING
            )
            found += _counted([snap.to_dict() or {} for snap in query.limit(limit).stream()])
        found.sort(key=lambda doc: doc.get("created_at") or _EPOCH, reverse=True)
        return found[:limit]

    def stuck(self, lease_margin_s: float, publish_grace_s: float, queued_max_s: float) -> list[Job]:
        """Jobs that no message will move on, by the database's clock: running past their lease by
        `lease_margin_s`, or queued with a publish pending for `publish_grace_s`, or queued for
        `queued_max_s` whatever the reason."""
        at = database_now(self.col)
        out: list[Job] = []
        for shard in range(SHARDS):
            running, queued = (
                {"shard": shard, "status": str(s)} for s in (JobStatus.RUNNING, JobStatus.QUEUED)
            )
            expired = self._oldest(running, "lease_until", at - dt.timedelta(seconds=lease_margin_s))
            pending = self._oldest(
                {**queued, "publish_pending": True}, "updated_at", at - dt.timedelta(seconds=publish_grace_s)
            )
            old = self._oldest(queued, "updated_at", at - dt.timedelta(seconds=queued_max_s))
            found = {job.job_id: job for job in (*expired, *pending, *old)}
            out += found.values()
        return out

    def _oldest(self, equal: dict[str, Any], field: str, before: dt.datetime) -> list[Job]:
        """The jobs of `equal` whose `field` is before `before`, oldest first, at most STUCK_MAX:
        a pass reads a bounded number whatever the backlog; the next pass takes the next ones."""
        query = self._query(equal, field).where(filter=FieldFilter(field, "<", before))
        snaps = _counted(list(query.order_by(field).limit(STUCK_MAX).stream()))
        return [Job.from_doc(snap.to_dict() or {}) for snap in snaps]

    def _query(self, equal: dict[str, Any], ranged: str) -> Any:
        return indexed(self.col, equal, ranged)

    def scan_cursors(self) -> dict[str, str]:
        """Where the reconciler's scan of each model prefix goes on from (object names)."""
        usage.count(usage.FIRESTORE_READ)
        snap = self._scan.get()
        return dict(snap.to_dict() or {}) if snap.exists else {}

    def save_scan_cursors(self, cursors: dict[str, str]) -> None:
        usage.count(usage.FIRESTORE_WRITE)
        self._scan.set(cursors)


def indexed(col: Any, equal: dict[str, Any], ranged: str) -> Any:
    """`col` filtered on `equal`, for a query that orders or ranges on `ranged`: only in a shape
    that has its index (QUERIES; ValueError otherwise, before Firestore would refuse it)."""
    if (tuple(equal), ranged) not in QUERIES:
        shape = f"{tuple(equal)} by {ranged}"
        raise ValueError(f"no index for a query on {shape}: add it to QUERIES and to Terraform")
    query: Any = col
    for field, value in equal.items():
        query = query.where(filter=FieldFilter(field, "==", value))
    return query


def _counted(found: list[T]) -> list[T]:
    """A query's documents, counted as Firestore bills them (one read each, at least one)."""
    usage.count(usage.FIRESTORE_READ, max(1, len(found)))
    return found
