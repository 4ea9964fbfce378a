"""Job states in the real Firestore emulator: create once, claim, lease, finish once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.cloud import firestore

from imagen.errors import Transient
from imagen.events import JobMessage
from imagen.jobs import Claim, JobStatus, JobStore, is_terminal


@pytest.fixture
def store(stack: Any) -> JobStore:
    return JobStore(firestore.Client(project=stack.s.project), "jobs-state-tests")


def message(unique: str) -> JobMessage:
    return JobMessage(f"state-{unique}", "enhance", "b", "enhance/x.jpg", "1")


def test_create_is_once(store: JobStore, unique: str) -> None:
    msg = message(unique)
    assert store.create(msg, "gs://b/enhance/x.jpg", 10) is None
    assert store.create(msg, "gs://b/enhance/x.jpg", 10) == "queued"
    assert store.get(msg.job_id)["status"] == "queued"  # type: ignore[index]


def test_claim_done_and_no_second_run(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    claim = store.claim(msg.job_id, lease_s=60)
    assert claim == Claim(msg.job_id, 1)
    with pytest.raises(Transient, match="running on another worker"):
        store.claim(msg.job_id, lease_s=60)
    assert isinstance(claim, Claim)
    assert store.done(claim, "gs://b/results/enhance/x.jpg", "1", {"total_s": 1.0}, {}) is True
    assert store.done(claim, "gs://b/results/enhance/x.jpg", "1", {"total_s": 1.0}, {}) is False
    assert store.claim(msg.job_id, lease_s=60) == "done"
    job = store.get(msg.job_id) or {}
    assert [h["status"] for h in job["history"]] == ["queued", "running", "done"]


def test_expired_lease_is_claimed_again(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    first = store.claim(msg.job_id, lease_s=60)
    assert isinstance(first, Claim)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    store.col.document(msg.job_id).update({"lease_until": past})  # the worker died
    second = store.claim(msg.job_id, lease_s=60)
    assert second == Claim(msg.job_id, 2)


def test_release_then_fail(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    claim = store.claim(msg.job_id, lease_s=60)
    assert isinstance(claim, Claim)
    store.release(claim, "Transient: Triton unreachable")
    job = store.get(msg.job_id) or {}
    assert job["status"] == "queued" and job["last_error"].startswith("Transient")
    claim = store.claim(msg.job_id, lease_s=60)
    assert isinstance(claim, Claim) and claim.attempt == 2
    assert store.failed(claim, "the file is empty (0 bytes)") is True
    assert (store.get(msg.job_id) or {})["reason"] == "the file is empty (0 bytes)"


def test_missing_job_is_reported(store: JobStore, unique: str) -> None:
    assert store.claim(f"nope-{unique}", lease_s=60) == "missing"


def test_retry_is_one_transition_of_a_failed_job(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    with pytest.raises(ValueError, match="is queued; only failed jobs can be retried"):
        store.retry(msg.job_id)
    claim = store.claim(msg.job_id, lease_s=60)
    assert isinstance(claim, Claim)
    store.failed(claim, "the file is empty (0 bytes)")
    store.mark_announced(msg.job_id)
    assert store.retry(msg.job_id) == msg  # the message to publish again
    job = store.get(msg.job_id) or {}
    assert job["status"] == JobStatus.QUEUED
    assert "reason" not in job and "event_published" not in job
    assert job["history"][-1]["retry"] is True
    with pytest.raises(ValueError, match="no job"):
        store.retry(f"nope-{unique}")


def test_wait_returns_when_every_job_ends(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    polls: list[int] = []
    docs = store.wait([msg.job_id], timeout_s=0.5, until=is_terminal, on_poll=lambda d: polls.append(len(d)))
    assert docs[msg.job_id]["status"] == "queued" and len(polls) >= 2  # timed out, still queued
    claim = store.claim(msg.job_id, lease_s=60)
    assert isinstance(claim, Claim)
    store.done(claim, "gs://b/results/enhance/x.jpg", "1", {}, {})
    assert store.wait([msg.job_id], timeout_s=30, until=is_terminal)[msg.job_id]["status"] == "done"
