"""The live feed of the jobs table: server-sent events of rows that changed.

Each tick reads the documents updated since what it has seen (LAG behind it, so a transaction
that committed late is still caught; a row already sent with the same update is not sent again),
and re-reads the running jobs, whose progress moves without touching `updated_at`. The page
decides what fits its filters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from imagen.jobs.model import JobStatus

from . import views
from .queries import LAG, JobReads

TICK_S = 1.0
HEARTBEAT_S = 15.0


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Feed:
    """One page's feed: what it has sent, and the running jobs it follows."""

    def __init__(self, reads: JobReads, now: dt.datetime) -> None:
        self.reads = reads
        self.high = now  # the newest update seen
        self.sent: dict[str, tuple[str | None, float]] = {}  # job → (updated_at, progress) sent
        self.running: set[str] = set()
        self.seeded = False

    def tick(self) -> list[dict[str, Any]]:
        """The rows to send now (blocking: runs in a thread)."""
        out: list[dict[str, Any]] = []
        if not self.seeded:  # the running jobs the page already shows: their progress moves
            self.seeded = True
            self.running.update(str(d.get("job_id")) for d in self.reads.running())
        changed = self.reads.changed_since(self.high - LAG)
        ids = {str(d.get("job_id")) for d in changed}
        follow = [j for j in self.running if j not in ids]
        for doc in changed + self.reads.documents(follow):
            row = views.row(doc)
            key = (row["updated_at"], row["progress"])
            if self.sent.get(row["job_id"]) != key:
                self.sent[row["job_id"]] = key
                out.append(row)
            if row["status"] == JobStatus.RUNNING:
                self.running.add(row["job_id"])
            else:
                self.running.discard(row["job_id"])
            updated = doc.get("updated_at")
            if isinstance(updated, dt.datetime) and updated > self.high:
                self.high = updated
        self._forget()
        return out

    def _forget(self) -> None:
        """Drop what has fallen behind the window (it cannot come back as the same update)."""
        floor = (self.high - 2 * LAG).isoformat()
        for job, (updated, _) in list(self.sent.items()):
            if job not in self.running and (updated or "") < floor:
                del self.sent[job]


async def stream(feed: Feed, disconnected: Callable[[], Any]) -> AsyncIterator[str]:
    """Server-sent events: `job` rows as they change, a comment now and then to keep it open."""
    yield "retry: 2000\n\n"
    since_beat = 0.0
    while not await disconnected():
        rows = await run_in_threadpool(feed.tick)
        for row in rows:
            yield sse("job", row)
        since_beat += TICK_S
        if since_beat >= HEARTBEAT_S:
            since_beat = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(TICK_S)
