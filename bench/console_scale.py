"""The console's reads against a collection of 10,000 jobs: what each page asks of Firestore.

Seeds the jobs (every model and status, created over the last two hours, their shards as the
pipeline sets them) into a collection of their own on the Firestore emulator, then times each
read the console's pages make and counts the documents it fetched. Every read is bounded by its
page, not by the collection: the figures should not move with --jobs.
`python -m bench.console_scale` (the end of `nox -s console`) prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack
from imagen.core.models import MODELS
from imagen.jobs.model import JobStatus, shard_of
from imagen_cli.console.queries import Filter, JobReads

COLLECTION = "jobs-console-scale"


def seed(db: Any, count: int) -> None:
    """`count` job documents with the fields the console reads, created over the last two hours."""
    col, now = db.collection(COLLECTION), dt.datetime.now(dt.UTC)
    statuses = [JobStatus.DONE] * 6 + [JobStatus.FAILED, JobStatus.QUEUED, JobStatus.RUNNING]
    models = list(MODELS)
    for start in range(0, count, 500):
        batch = db.batch()
        for i in range(start, min(count, start + 500)):
            job_id = f"{i:032x}"
            created = now - dt.timedelta(seconds=7200 * i / count)
            status = statuses[i % len(statuses)]
            batch.set(
                col.document(job_id),
                {
                    "job_id": job_id,
                    "shard": shard_of(job_id),
                    "model": models[i % len(models)],
                    "object": f"{models[i % len(models)]}/scale/photo-{i:05d}.jpg",
                    "status": str(status),
                    "attempts": 1,
                    "created_at": created,
                    "updated_at": created + dt.timedelta(seconds=2),
                    "started_at": created + dt.timedelta(seconds=1),
                    "finished_at": created + dt.timedelta(seconds=2),
                    "lease_until": created + dt.timedelta(seconds=120),
                    "reason": "not an image: the file looks like text" if status == JobStatus.FAILED else "",
                    "timings": {"total_s": 1.0},
                },
            )
        batch.commit()


def timed(name: str, read: Callable[[], Any], rows: Callable[[Any], int], repeats: int = 5) -> dict[str, Any]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = read()
        seconds.append(time.perf_counter() - started)
    return {"read": name, "rows": rows(result), "median_ms": round(1000 * statistics.median(seconds), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    os.environ.setdefault("IMAGEN_PORT_BASE", "19700")
    os.environ.setdefault("IMAGEN_STACK_DIR", str(ROOT / ".stack-console-scale"))
    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    from google.cloud import firestore

    with Stack(s).session(lambda m: print(m, flush=True), only=["firestore"]):
        db = firestore.Client(project=s.project)
        started = time.perf_counter()
        seed(db, args.jobs)
        print(f"seeded {args.jobs} jobs in {time.perf_counter() - started:.1f} s", flush=True)
        reads = JobReads(db, COLLECTION)
        now = dt.datetime.now(dt.UTC)
        first = reads.page(Filter(), 50)
        rows = [
            timed("table: newest 50", lambda: reads.page(Filter(), 50), lambda p: len(p.rows)),
            timed("table: next 50", lambda: reads.page(Filter(), 50, first.next), lambda p: len(p.rows)),
            timed(
                "table: failed upscale",
                lambda: reads.page(Filter("upscale", "failed"), 50),
                lambda p: len(p.rows),
            ),
            timed(
                "table: a name in the newest (photo-00123)",
                lambda: reads.page(Filter(name="photo-00123"), 50),
                lambda p: len(p.rows),
            ),
            timed(
                "table: a name that matches none (documents scanned)",
                lambda: reads.page(Filter(name="no-such-name"), 50),
                lambda p: p.scanned,
            ),
            timed("live: changed in 10 s", lambda: reads.changed_since(now - dt.timedelta(seconds=10)), len),
            timed("live: running", reads.running, len),
            timed(
                "overview: last hour", lambda: reads.window(now - dt.timedelta(hours=1)), lambda w: len(w[0])
            ),
            timed("overview: failures", reads.failures, len),
        ]
    print(f"\nthe console's reads, {args.jobs} jobs in the collection (Firestore emulator, this machine)")
    print("| read | rows (scanned, for a name matching none) | median ms |\n|---|---|---|")
    for r in rows:
        print(f"| {r['read']} | {r['rows']} | {r['median_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
