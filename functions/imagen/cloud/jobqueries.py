"""Queries over the jobs collection: the newest jobs for tools, the stuck ones for the
reconciler, and where the reconciler's scan of each model prefix goes on from."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from imagen.cloud.jobstore import database_now
from imagen.jobs.model import Job, JobStatus


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
        """The newest job documents first, optionally of one status, model and owner."""
        query: Any = self.col
        if owner:
            query = query.where(filter=FieldFilter("owner", "==", owner))
        if status:
            query = query.where(filter=FieldFilter("status", "==", str(status)))
        if model:
            query = query.where(filter=FieldFilter("model", "==", model))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [snap.to_dict() or {} for snap in query.stream()]

    def stuck(self, lease_margin_s: float, publish_grace_s: float, queued_max_s: float) -> list[Job]:
        """Jobs that no message will move on, by the database's clock: running past their lease by
        `lease_margin_s`, or queued with a publish pending for `publish_grace_s`, or queued for
        `queued_max_s` whatever the reason."""
        at = database_now(self.col)
        expired = self.col.where(filter=FieldFilter("status", "==", str(JobStatus.RUNNING))).where(
            filter=FieldFilter("lease_until", "<", at - dt.timedelta(seconds=lease_margin_s))
        )
        waiting = self.col.where(filter=FieldFilter("status", "==", str(JobStatus.QUEUED))).where(
            filter=FieldFilter("updated_at", "<", at - dt.timedelta(seconds=publish_grace_s))
        )
        out = [Job.from_doc(snap.to_dict() or {}) for snap in expired.stream()]
        for snap in waiting.stream():
            job = Job.from_doc(snap.to_dict() or {})
            old = job.updated_at is not None and job.updated_at < at - dt.timedelta(seconds=queued_max_s)
            if job.publish_pending or old:
                out.append(job)
        return out

    def scan_cursors(self) -> dict[str, str]:
        """Where the reconciler's scan of each model prefix goes on from (object names)."""
        snap = self._scan.get()
        return dict(snap.to_dict() or {}) if snap.exists else {}

    def save_scan_cursors(self, cursors: dict[str, str]) -> None:
        self._scan.set(cursors)
