"""What one function call asks of the services around it, counted where the calls are made.

A handler runs inside `metered(function)`; the cloud layer calls `count(op)` at each request it
sends. At the end one `usage` log line carries the counts, the job, and the process's CPU seconds
over the call (all its threads: decoding, tiling, encoding; inference runs in Triton, so this is
the function's own work, together with any call running beside it on the instance).
`bench.costs` runs one job at a time and adds the lines up per job: what a job costs each service.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from imagen.core import logs

# Billable operations, by the names Google prices them under.
FIRESTORE_READ = "firestore_reads"  # documents read (a query: one per document returned, at least 1)
FIRESTORE_WRITE = "firestore_writes"  # documents written (set, update, create, a transaction's writes)
PUBSUB_PUBLISH = "pubsub_publishes"  # messages published
STORAGE_CLASS_A = "storage_class_a"  # inserts, resumable-upload requests, lists
STORAGE_CLASS_B = "storage_class_b"  # object reads and metadata gets
SIGN = "signatures"  # IAM signBlob calls (signed URLs)
OPS = (FIRESTORE_READ, FIRESTORE_WRITE, PUBSUB_PUBLISH, STORAGE_CLASS_A, STORAGE_CLASS_B, SIGN)


@dataclass
class Meter:
    """The counts of one function call (shared with the threads it starts, e.g. its lease)."""

    function: str
    job_id: str = ""
    model: str = ""
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, n: int = 1) -> None:
        with self.lock:
            self.counts[op] += n


_current: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("imagen_meter", default=None)


def count(op: str, n: int = 1) -> None:
    """Count `n` operations against the call being metered (none outside a handler)."""
    meter = _current.get()
    if meter is not None and n:
        meter.add(op, n)


def name_job(job_id: str, model: str = "") -> None:
    """Say which job the metered call works for, once it is known."""
    meter = _current.get()
    if meter is not None:
        meter.job_id, meter.model = job_id, model or meter.model


@contextlib.contextmanager
def metered(function: str) -> Iterator[Meter]:
    """Count what the block asks of the services; log it as one `usage` line at the end."""
    meter = Meter(function)
    token = _current.set(meter)
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        yield meter
    finally:
        _current.reset(token)
        logs.usage(
            function,
            meter.job_id,
            meter.model,
            {op: meter.counts[op] for op in OPS},
            round(time.process_time() - cpu, 4),
            round(time.perf_counter() - wall, 4),
        )
