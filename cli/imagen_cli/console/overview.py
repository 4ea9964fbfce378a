"""The overview: per model, the last hour's jobs by status, throughput and duration percentiles,
and the most common failure reasons. Pure: counts the documents it is given."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from imagen.jobs.model import JobStatus

WINDOW = dt.timedelta(hours=1)
BUCKETS = 12  # of five minutes
TOP_REASONS = 8
STATUSES = [str(s) for s in JobStatus]


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (None of nothing)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _bucket(at: Any, start: dt.datetime, width: dt.timedelta) -> int | None:
    if not isinstance(at, dt.datetime) or at < start:
        return None
    return min(BUCKETS - 1, int((at - start) / width))


def per_model(docs: Iterable[Mapping[str, Any]], now: dt.datetime, models: Iterable[str]) -> dict[str, Any]:
    """Each model's last hour: jobs created per bucket by their status now, done per bucket, and
    the p50/p95 of done jobs' durations (created to finished)."""
    start, width = now - WINDOW, WINDOW / BUCKETS
    out: dict[str, Any] = {
        m: {
            "created": [dict.fromkeys(STATUSES, 0) for _ in range(BUCKETS)],
            "done": [0] * BUCKETS,
            "totals": dict.fromkeys(STATUSES, 0),
            "durations": [],
        }
        for m in models
    }
    for doc in docs:
        model = out.get(str(doc.get("model")))
        status = str(doc.get("status"))
        if model is None or status not in STATUSES:
            continue
        model["totals"][status] += 1
        created = _bucket(doc.get("created_at"), start, width)
        if created is not None:
            model["created"][created][status] += 1
        if status == JobStatus.DONE:
            finished = _bucket(doc.get("finished_at"), start, width)
            if finished is not None:
                model["done"][finished] += 1
            if isinstance(doc.get("finished_at"), dt.datetime) and isinstance(
                doc.get("created_at"), dt.datetime
            ):
                model["durations"].append((doc["finished_at"] - doc["created_at"]).total_seconds())
    for model in out.values():
        durations = model.pop("durations")
        model["p50_s"] = percentile(durations, 50)
        model["p95_s"] = percentile(durations, 95)
        model["per_minute"] = round(sum(model["done"]) / (WINDOW.total_seconds() / 60), 2)
    return out


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def reason_kind(reason: str) -> str:
    """A reason with its numbers and quoted values blanked, so like failures count together."""
    return _NUMBER.sub("#", _QUOTED.sub("'…'", reason)).strip()[:200]


def failure_reasons(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The most common kinds of failure reason, each with a count, its models and an example."""
    counts: Counter[str] = Counter()
    example: dict[str, str] = {}
    models: dict[str, set[str]] = {}
    for doc in docs:
        reason = str(doc.get("reason") or "").strip()
        if not reason:
            continue
        kind = reason_kind(reason)
        counts[kind] += 1
        example.setdefault(kind, reason)
        models.setdefault(kind, set()).add(str(doc.get("model", "")))
    return [
        {"kind": kind, "count": n, "example": example[kind], "models": sorted(models[kind])}
        for kind, n in counts.most_common(TOP_REASONS)
    ]
