"""Job states in the real Firestore emulator: create once, claim, lease, finish once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.cloud import firestore

from imagen.cloud.jobstore import RUNNING_ELSEWHERE, Claim, JobStatus, JobStore, is_terminal
from imagen.jobs.messages import JobMessage


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
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim) and claim.attempt == 1 and claim.holder
    # A second delivery while the lease is live is not an attempt: nothing changes.
    assert store.claim(msg.job_id, lease_s=60, max_attempts=5) == RUNNING_ELSEWHERE
    assert (store.get(msg.job_id) or {})["attempts"] == 1
    assert store.done(claim, "gs://b/results/enhance/x.jpg", "1", {"total_s": 1.0}, {}) is True
    assert store.done(claim, "gs://b/results/enhance/x.jpg", "1", {"total_s": 1.0}, {}) is False
    assert store.claim(msg.job_id, lease_s=60, max_attempts=5) == "done"
    job = store.get(msg.job_id) or {}
    assert [h["status"] for h in job["history"]] == ["queued", "running", "done"]


def test_expired_lease_is_claimed_again(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    first = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(first, Claim)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    store.col.document(msg.job_id).update({"lease_until": past})  # the worker died
    second = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(second, Claim) and second.attempt == 2


def test_release_then_fail(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim)
    store.release(claim, "Transient: Triton unreachable")
    job = store.get(msg.job_id) or {}
    assert job["status"] == "queued" and job["last_error"].startswith("Transient")
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim) and claim.attempt == 2
    assert store.failed(claim, "the file is empty (0 bytes)") is True
    assert (store.get(msg.job_id) or {})["reason"] == "the file is empty (0 bytes)"


def test_missing_job_is_reported(store: JobStore, unique: str) -> None:
    assert store.claim(f"nope-{unique}", lease_s=60, max_attempts=5) == "missing"


def test_retry_is_one_transition_of_a_failed_job(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    with pytest.raises(ValueError, match="is queued; only failed jobs can be retried"):
        store.retry(msg.job_id)
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
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
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim)
    store.done(claim, "gs://b/results/enhance/x.jpg", "1", {}, {})
    assert store.wait([msg.job_id], timeout_s=30, until=is_terminal)[msg.job_id]["status"] == "done"


def test_a_stale_worker_can_move_the_job_no_more(store: JobStore, unique: str) -> None:
    """Worker 1's lease ran out and worker 2 took the job: worker 1's release, renewal and done
    are all refused (fenced on the claim), so it can neither requeue nor finish worker 2's job."""
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    stale = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(stale, Claim)
    store.col.document(msg.job_id).update({"lease_until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)})
    current = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(current, Claim) and current.attempt == 2
    assert store.renew(stale, 60) is False
    assert store.release(stale, "Transient: late") is False
    assert store.done(stale, "gs://b/results/x", "1", {}, {}) is False
    assert store.failed(stale, "late") is False
    job = store.get(msg.job_id) or {}
    assert job["status"] == "running" and job["attempts"] == 2 and "last_error" not in job
    assert store.done(current, "gs://b/results/x", "1", {}, {}) is True


def test_a_job_out_of_attempts_fails_at_its_next_claim(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    for attempt in range(1, 4):
        claim = store.claim(msg.job_id, lease_s=60, max_attempts=3)
        assert isinstance(claim, Claim) and claim.attempt == attempt
        store.release(claim, f"Transient: fault {attempt}")
    assert store.claim(msg.job_id, lease_s=60, max_attempts=3) == "failed"
    job = store.get(msg.job_id) or {}
    assert job["reason"] == "gave up after 3 attempts; last error: Transient: fault 3"


def test_dead_letter_fails_only_a_job_whose_attempts_are_spent(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    assert store.give_up(msg.job_id, max_attempts=2) == "requeue"  # no attempt was ever made
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=2)
    assert isinstance(claim, Claim)
    assert store.give_up(msg.job_id, max_attempts=2) == RUNNING_ELSEWHERE  # its worker holds it
    store.release(claim, "Transient: one")
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=2)
    assert isinstance(claim, Claim)
    store.release(claim, "Transient: two")
    assert store.give_up(msg.job_id, max_attempts=2) == "failed"
    job = store.get(msg.job_id) or {}
    assert job["reason"] == "gave up after 2 attempts; last error: Transient: two"
    assert job["history"][-1]["dead_letter"] is True


def test_retry_gives_a_fresh_budget_and_stuck_finds_its_pending_publish(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=1)
    assert isinstance(claim, Claim)
    store.release(claim, "Transient: one")
    assert store.claim(msg.job_id, lease_s=60, max_attempts=1) == "failed"
    store.retry(msg.job_id)  # the publish that should follow never happens
    assert msg.job_id in {j["job_id"] for j in store.stuck(0, 0, 3600)}
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=1)
    assert isinstance(claim, Claim) and claim.attempt == 2  # attempts count on; the budget is new
    assert msg.job_id not in {j["job_id"] for j in store.stuck(3600, 0, 3600)}  # its lease is live
    assert msg.job_id in {j["job_id"] for j in store.stuck(-120, 0, 3600)}  # past it by the margin
