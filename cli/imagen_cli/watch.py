"""Polling jobs until they end: for the CLI and the local stack's drivers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from imagen.cloud.jobstore import JobStore
from imagen.jobs.model import is_finished

Doc = dict[str, Any]


def wait(
    store: JobStore,
    job_ids: Iterable[str],
    timeout_s: float,
    until: Callable[[Doc | None], bool] = is_finished,
    every_s: float = 0.25,
    on_poll: Callable[[dict[str, Doc]], None] | None = None,
) -> dict[str, Doc]:
    """Poll until every job meets `until` (default: finished) or the timeout passes.

    Returns the last document read of each job that exists (a caller checks the statuses).
    """
    ids = list(dict.fromkeys(job_ids))
    docs: dict[str, Doc] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        for jid in ids:
            if not until(docs.get(jid)):
                doc = store.document(jid)
                if doc is not None:
                    docs[jid] = doc
        if on_poll:
            on_poll(docs)
        if all(until(docs.get(jid)) for jid in ids) or time.monotonic() > deadline:
            return docs
        time.sleep(every_s)
