"""The console's pure parts: the options form and its check, the job as the page gets it, the
overview's counts, and the live feed's bookkeeping (on a stand-in for the jobs' reads)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from imagen.core import options
from imagen.core.models import MODELS
from imagen_cli.console import forms, overview, views
from imagen_cli.console.live import Feed

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
JOB = "a" * 32


def test_the_form_has_a_field_for_every_option_of_each_model() -> None:
    for model in MODELS:
        assert [f["key"] for f in forms.form(model)] == list(options.allowed(model))


def test_the_form_is_checked_by_the_upload_code() -> None:
    assert forms.check("upscale", {"scale": "2", "format": "webp", "quality": ""}) == {
        "imagen-scale": "2",
        "imagen-format": "webp",
    }
    with pytest.raises(options.OptionError, match="imagen-scale must be a number from 1 to 4"):
        forms.check("upscale", {"scale": "8"})
    with pytest.raises(options.OptionError, match="applies to background_remove only"):
        forms.check("enhance", {"crop": "subject"})
    with pytest.raises(options.OptionError, match="unknown model"):
        forms.check("sharpen", {})


def _doc(**extra: Any) -> dict[str, Any]:
    return {
        "job_id": JOB,
        "model": "style_aged",
        "object": "style_aged/cat.jpg",
        "status": "failed",
        "attempts": 2,
        "created_at": T0,
        "finished_at": T0 + dt.timedelta(seconds=3.5),
        "updated_at": T0 + dt.timedelta(seconds=3.5),
        "source_uri": "gs://b/style_aged/cat.jpg",
        "reason": "not an image: the file looks like text",
        "history": [
            {"status": "queued", "at": T0},
            {"status": "running", "attempt": 1, "at": T0},
            {"status": "failed", "attempt": 1, "at": T0},
            {"status": "queued", "retry": True, "at": T0},
            {"status": "running", "attempt": 2, "at": T0},
            {"status": "failed", "attempt": 2, "at": T0},
        ],
        **extra,
    }


def test_a_job_as_the_page_gets_it() -> None:
    job = views.detail(_doc(timings={"infer_s": 2.0, "download_s": 0.5, "infer_wait_s": 1.0}), local=True)
    assert job["duration_s"] == 3.5
    assert job["note"] == "not an image: the file looks like text"
    assert job["retryable"]
    assert [s["stage"] for s in job["stages"]] == ["download", "infer"]
    assert [e["id"] for e in job["events"]] == [
        f"{JOB}-started-1",
        f"{JOB}-failed-1",
        f"{JOB}-started-2",
        f"{JOB}-failed-2",
    ]
    assert job["links"]["source"] == {"uri": "gs://b/style_aged/cat.jpg"}
    assert job["links"]["result"] == {}
    cloud = views.detail(_doc(), local=False)["links"]["source"]["cloud"]
    assert cloud == "https://console.cloud.google.com/storage/browser/_details/b/style_aged/cat.jpg"


def test_the_overview_counts_the_last_hour() -> None:
    now = T0 + dt.timedelta(hours=1)
    docs = [
        {
            "model": "upscale",
            "status": "done",
            "created_at": now - dt.timedelta(minutes=2, seconds=d),
            "finished_at": now - dt.timedelta(minutes=2) + dt.timedelta(seconds=d),
        }
        for d in range(1, 21)
    ] + [
        {"model": "upscale", "status": "failed", "created_at": now - dt.timedelta(minutes=50)},
        {"model": "enhance", "status": "running", "created_at": now - dt.timedelta(minutes=1)},
        {"model": "unknown", "status": "done", "created_at": now},
    ]
    out = overview.per_model(docs, now, MODELS)
    up = out["upscale"]
    assert up["totals"] == {"queued": 0, "running": 0, "done": 20, "failed": 1}
    assert up["created"][-1]["done"] == 20 and up["created"][2]["failed"] == 1
    assert sum(up["done"]) == 20
    assert up["p50_s"] == 20.0 and up["p95_s"] == 38.0  # 2d seconds each, d = 1..20
    assert out["enhance"]["totals"]["running"] == 1
    assert overview.percentile([], 50) is None


def test_like_failures_count_together() -> None:
    docs = [
        {"model": "upscale", "reason": "the image is 16400x100: upscale needs ~0.58 GiB"},
        {"model": "enhance", "reason": "the image is 9000x9000: upscale needs ~1.2 GiB"},
        {"model": "upscale", "reason": "imagen-scale must be a number from 1 to 4; got '8'"},
        {"model": "upscale", "reason": ""},
    ]
    top = overview.failure_reasons(docs)
    assert top[0]["count"] == 2 and top[0]["models"] == ["enhance", "upscale"]
    assert top[1]["kind"] == "imagen-scale must be a number from # to #; got '…'"


class FakeReads:
    """Stands in for JobReads: the documents changed since a moment, and some by id."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def changed_since(self, since: dt.datetime) -> list[dict[str, Any]]:
        return sorted(
            (d for d in self.docs.values() if d["updated_at"] > since), key=lambda d: d["updated_at"]
        )

    def documents(self, ids: list[str]) -> list[dict[str, Any]]:
        return [self.docs[i] for i in ids if i in self.docs]

    def running(self) -> list[dict[str, Any]]:
        return [d for d in self.docs.values() if d["status"] == "running"]


def test_the_feed_sends_each_change_once_and_follows_progress() -> None:
    reads = FakeReads()
    feed = Feed(reads, T0)  # type: ignore[arg-type]
    assert feed.tick() == []
    reads.docs[JOB] = {
        "job_id": JOB,
        "status": "running",
        "progress": 0.1,
        "updated_at": T0 + dt.timedelta(seconds=1),
    }
    assert [r["progress"] for r in feed.tick()] == [0.1]
    assert feed.tick() == []  # the same update is not sent twice
    reads.docs[JOB]["progress"] = 0.5  # progress moves without an update of updated_at
    assert [r["progress"] for r in feed.tick()] == [0.5]
    # a transaction that commits late, with an update time a little behind what was seen
    late = "b" * 32
    reads.docs[late] = {"job_id": late, "status": "queued", "updated_at": T0 + dt.timedelta(seconds=0.5)}
    assert [r["job_id"] for r in feed.tick()] == [late]
    reads.docs[JOB].update(status="done", progress=1.0, updated_at=T0 + dt.timedelta(seconds=9))
    assert [r["status"] for r in feed.tick()] == ["done"]
    assert JOB not in feed.running
