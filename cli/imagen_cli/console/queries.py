"""The console's reads of the jobs collection: a page at a time, never the whole collection.

Every query asks each shard of the collection (imagen.jobs.model.SHARDS) in a shape that has its
index (imagen.cloud.jobqueries.indexed) and merges the answers in order.

- a page of the table: newest first, model and status filtered by Firestore (the indexes of
  `imagen jobs`), a name filter matched here over at most SCAN_MAX documents per request;
- the live feed: documents updated since a moment, LAG behind it so that a transaction that
  commits late is still seen, and the running jobs whose progress moves without an update;
- the overview's window: the last hour's jobs, only the fields it counts, at most WINDOW_MAX.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from imagen.cloud.jobqueries import indexed
from imagen.jobs.model import SHARDS, JobStatus

Doc = dict[str, Any]
PAGE_MAX = 200  # rows a page may ask for
SCAN_MAX = 2000  # documents one name-filtered page reads at most before it answers
SCAN_BATCH = 250
LAG = dt.timedelta(seconds=5)  # the live feed reads this far behind what it has seen
FEED_MAX = 300  # changed documents one tick of the feed reads at most
RUNNING_MAX = 200  # running jobs whose progress the feed follows
WINDOW_MAX = 5000  # jobs the overview counts at most
FAILURES_MAX = 300  # failed jobs the overview's reasons come from
JOB_ID = re.compile(r"[0-9a-f]{32}")
ROW_FIELDS = [
    "job_id",
    "object",
    "model",
    "status",
    "waiting_for",
    "progress",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "reason",
    "last_error",
]
WINDOW_FIELDS = ["model", "status", "created_at", "started_at", "finished_at", "reason", "timings"]


@dataclass(frozen=True)
class Filter:
    """What the table shows: a model, a status, and a piece of the object's name (any case)."""

    model: str = ""
    status: str = ""
    name: str = ""

    def matches(self, doc: Doc) -> bool:
        return (
            (not self.model or doc.get("model") == self.model)
            and (not self.status or doc.get("status") == self.status)
            and (not self.name or self.name.lower() in str(doc.get("object", "")).lower())
        )


@dataclass
class Page:
    rows: list[Doc]
    next: str = ""  # the job id to go on after ("" at the end)
    scanned: int = 0  # documents read for a name filter
    partial: bool = False  # the scan stopped at SCAN_MAX: go on with `next` for more
    notes: list[str] = field(default_factory=list)


class JobReads:
    """Reads across the jobs collection for the console's pages."""

    def __init__(self, db: firestore.Client, collection: str) -> None:
        self.db = db
        self.col = db.collection(collection)

    def _filtered(self, f: Filter, shard: int) -> Any:
        """One shard's jobs of the filter's model and status, newest first."""
        equal: dict[str, Any] = {"shard": shard}
        if f.model:
            equal["model"] = f.model
        if f.status:
            equal["status"] = str(JobStatus(f.status))
        return indexed(self.col, equal, "created_at").order_by(
            "created_at", direction=firestore.Query.DESCENDING
        )

    def _newest(self, f: Filter, limit: int, after: Any = None, fields: list[str] | None = None) -> list[Any]:
        """The newest `limit` snapshots of the filter after the snapshot `after`, across shards."""

        def shard(n: int) -> Any:
            query = self._filtered(f, n).select(fields or ROW_FIELDS)
            return query.start_after(after) if after is not None else query

        return _merged(shard, limit, _by("created_at"), newest_first=True)

    def page(self, f: Filter, limit: int, after: str = "") -> Page:
        """A page of the table, newest first, from after the job `after`."""
        limit = max(1, min(limit, PAGE_MAX))
        if JOB_ID.fullmatch(f.name.strip().lower()):  # a job id: that job, whatever else is asked
            doc = self.document(f.name.strip().lower())
            return Page([doc] if doc else [])
        cursor = self.col.document(after).get() if after else None
        if cursor is not None and not cursor.exists:
            cursor = None
        if not f.name:
            docs = self._newest(f, limit + 1, cursor)
            rows = [d.to_dict() or {} for d in docs[:limit]]
            return Page(rows, next=docs[limit - 1].id if len(docs) > limit else "")
        return self._scan(f, limit, cursor)

    def _scan(self, f: Filter, limit: int, cursor: Any) -> Page:
        """A name-filtered page: read in batches, keep the matches, stop at `limit` or SCAN_MAX."""
        rows: list[Doc] = []
        scanned = 0
        last: Any = cursor
        while scanned < SCAN_MAX:
            batch = self._newest(f, SCAN_BATCH, last)
            for snap in batch:
                scanned += 1
                last = snap
                doc = snap.to_dict() or {}
                if f.matches(doc):
                    rows.append(doc)
                    if len(rows) == limit:
                        return Page(rows, next=snap.id, scanned=scanned)
            if len(batch) < SCAN_BATCH:
                return Page(rows, scanned=scanned)
        return Page(rows, next=last.id if last is not None else "", scanned=scanned, partial=True)

    def document(self, job_id: str) -> Doc | None:
        snap = self.col.document(job_id).get()
        return (snap.to_dict() or {}) if snap.exists else None

    def documents(self, job_ids: Iterable[str]) -> list[Doc]:
        refs = [self.col.document(j) for j in job_ids]
        if not refs:
            return []
        return [s.to_dict() or {} for s in self.db.get_all(refs, field_paths=ROW_FIELDS) if s.exists]

    def changed_since(self, since: dt.datetime) -> list[Doc]:
        """Documents updated after `since`: the newest FEED_MAX of them, newest first (with more
        changes than that in one tick the feed moves on to the newest instead of stalling)."""

        def shard(n: int) -> Any:
            query = indexed(self.col, {"shard": n}, "updated_at")
            return (
                query.where(filter=FieldFilter("updated_at", ">", since))
                .order_by("updated_at", direction=firestore.Query.DESCENDING)
                .select(ROW_FIELDS)
            )

        found = _merged(shard, FEED_MAX, _by("updated_at"), newest_first=True)
        return [s.to_dict() or {} for s in found]

    def running(self) -> list[Doc]:
        def shard(n: int) -> Any:
            query = indexed(self.col, {"shard": n, "status": str(JobStatus.RUNNING)}, "lease_until")
            return query.order_by("lease_until").select(ROW_FIELDS)

        return [s.to_dict() or {} for s in _merged(shard, RUNNING_MAX, _by("job_id"))]

    def window(self, since: dt.datetime) -> tuple[list[Doc], bool]:
        """Jobs created since `since` (the fields the overview counts), and whether it was capped."""

        def shard(n: int) -> Any:
            query = self._filtered(Filter(), n).where(filter=FieldFilter("created_at", ">=", since))
            return query.select(WINDOW_FIELDS)

        docs = [
            s.to_dict() or {} for s in _merged(shard, WINDOW_MAX + 1, _by("created_at"), newest_first=True)
        ]
        return docs[:WINDOW_MAX], len(docs) > WINDOW_MAX

    def failures(self) -> list[Doc]:
        """The newest failed jobs (their model and reason), at most FAILURES_MAX."""
        found = self._newest(
            Filter(status=str(JobStatus.FAILED)), FAILURES_MAX, fields=["model", "reason", "created_at"]
        )
        return [s.to_dict() or {} for s in found]


_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _by(field_name: str) -> Callable[[Any], tuple[Any, str]]:
    """A sort key: the snapshot's field (absent: first), then its id, as Firestore orders ties."""

    def key(snap: Any) -> tuple[Any, str]:
        value = (snap.to_dict() or {}).get(field_name)
        return (_EPOCH if value is None else value, snap.id)

    return key


def _merged(
    shard_query: Callable[[int], Any], limit: int, key: Callable[[Any], Any], newest_first: bool = False
) -> list[Any]:
    """The first `limit` snapshots of every shard's query, merged in the queries' order."""
    found = [snap for n in range(SHARDS) for snap in shard_query(n).limit(limit).stream()]
    return sorted(found, key=key, reverse=newest_first)[:limit]
