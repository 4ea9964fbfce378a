"""Job states in the real Firestore emulator: create once, claim, lease, finish once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.cloud import firestore

from imagen.cloud.jobqueries import JobQueries
from imagen.cloud.jobstore import JobStore
from imagen.jobs.messages import JobMessage
from imagen.jobs.model import Claim, Job, JobStatus, Outcome, Skip, is_terminal
from imagen_cli import watch


@pytest.fixture
def store(stack: Any) -> JobStore:
    return JobStore(firestore.Client(project=stack.s.project), "jobs-state-tests")


@pytest.fixture
def queries(stack: Any) -> JobQueries:
    return JobQueries(firestore.Client(project=stack.s.project), "jobs-state-tests")


def job_of(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    assert job is not None
    return job


def message(unique: str) -> JobMessage:
    return JobMessage(f"state-{unique}", "enhance", "b", "enhance/x.jpg", "1")


def test_create_is_once(store: JobStore, unique: str) -> None:
    msg = message(unique)
    assert store.create(msg, "gs://b/enhance/x.jpg", 10) is None
    assert store.create(msg, "gs://b/enhance/x.jpg", 10) == "queued"
    assert job_of(store, msg.job_id).status == JobStatus.QUEUED


def test_claim_done_and_no_second_run(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim) and claim.attempt == 1 and claim.holder
    # A second delivery while the lease is live is not an attempt: nothing changes.
    assert store.claim(msg.job_id, lease_s=60, max_attempts=5) is Skip.RUNNING_ELSEWHERE
    assert job_of(store, msg.job_id).attempts == 1
    assert store.done(claim, "gs://b/results/enhance/x.jpg", "1", {"total_s": 1.0}, {}) is True
    assert store.done(claim, "gs://b/results/enhance/x.jpg", "1", {"total_s": 1.0}, {}) is False
    assert store.claim(msg.job_id, lease_s=60, max_attempts=5) is Skip.DONE
    assert [h["status"] for h in job_of(store, msg.job_id).history] == ["queued", "running", "done"]


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
    assert store.release(claim, "Transient: Triton unreachable") is Outcome.REQUEUED
    job = job_of(store, msg.job_id)
    assert job.status == JobStatus.QUEUED and job.last_error.startswith("Transient")
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim) and claim.attempt == 2
    assert store.failed(claim, "the file is empty (0 bytes)") is True
    assert job_of(store, msg.job_id).reason == "the file is empty (0 bytes)"


def test_missing_job_is_reported(store: JobStore, unique: str) -> None:
    assert store.claim(f"nope-{unique}", lease_s=60, max_attempts=5) is Skip.MISSING


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
    doc = store.document(msg.job_id) or {}
    assert doc["status"] == JobStatus.QUEUED
    assert "reason" not in doc and "event_published" not in doc
    assert doc["history"][-1]["retry"] is True
    with pytest.raises(ValueError, match="no job"):
        store.retry(f"nope-{unique}")


def test_wait_returns_when_every_job_ends(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    polls: list[int] = []
    docs = watch.wait(store, [msg.job_id], 0.5, until=is_terminal, on_poll=lambda d: polls.append(len(d)))
    assert docs[msg.job_id]["status"] == "queued" and len(polls) >= 2  # timed out, still queued
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim)
    store.done(claim, "gs://b/results/enhance/x.jpg", "1", {}, {})
    assert watch.wait(store, [msg.job_id], 30, until=is_terminal)[msg.job_id]["status"] == "done"


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
    assert store.release(stale, "Transient: late") is None
    assert store.done(stale, "gs://b/results/x", "1", {}, {}) is False
    assert store.failed(stale, "late") is False
    job = job_of(store, msg.job_id)
    assert job.status == JobStatus.RUNNING and job.attempts == 2 and job.last_error == ""
    assert store.done(current, "gs://b/results/x", "1", {}, {}) is True


def test_a_job_out_of_attempts_fails_at_its_next_claim(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    for attempt in range(1, 4):
        claim = store.claim(msg.job_id, lease_s=60, max_attempts=3)
        assert isinstance(claim, Claim) and claim.attempt == attempt
        store.release(claim, f"Transient: fault {attempt}")
    assert store.claim(msg.job_id, lease_s=60, max_attempts=3) is Outcome.FAILED_NOW
    assert job_of(store, msg.job_id).reason == "gave up after 3 attempts; last error: Transient: fault 3"


def test_dead_letter_fails_only_a_job_whose_attempts_are_spent(store: JobStore, unique: str) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    assert store.give_up(msg.job_id, max_attempts=2) is Outcome.REQUEUED  # no attempt was ever made
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=2)
    assert isinstance(claim, Claim)
    assert store.give_up(msg.job_id, max_attempts=2) is Skip.RUNNING_ELSEWHERE  # its worker holds it
    store.release(claim, "Transient: one")
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=2)
    assert isinstance(claim, Claim)
    store.release(claim, "Transient: two")
    assert store.give_up(msg.job_id, max_attempts=2) is Outcome.FAILED_NOW
    job = job_of(store, msg.job_id)
    assert job.reason == "gave up after 2 attempts; last error: Transient: two"
    assert job.history[-1]["dead_letter"] is True
    assert store.give_up(msg.job_id, max_attempts=2) is Skip.FAILED  # already failed: left as it is


def test_retry_gives_a_fresh_budget_and_stuck_finds_its_pending_publish(
    store: JobStore, queries: JobQueries, unique: str
) -> None:
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=1)
    assert isinstance(claim, Claim)
    store.release(claim, "Transient: one")
    assert store.claim(msg.job_id, lease_s=60, max_attempts=1) is Outcome.FAILED_NOW
    store.retry(msg.job_id)  # the publish that should follow never happens
    assert msg.job_id in {j.job_id for j in queries.stuck(0, 0, 3600)}
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=1)
    assert isinstance(claim, Claim) and claim.attempt == 2  # attempts count on; the budget is new
    assert msg.job_id not in {j.job_id for j in queries.stuck(3600, 0, 3600)}  # its lease is live
    assert msg.job_id in {j.job_id for j in queries.stuck(-120, 0, 3600)}  # past it by the margin


def test_every_time_a_job_carries_is_the_databases(store: JobStore, unique: str, monkeypatch: Any) -> None:
    """An instance whose clock runs an hour fast stamps nothing with it: the reconciler compares
    `updated_at` with the database's clock, so a job created by it must not look an hour young."""
    import imagen.cloud.jobstore as jobstore_module

    fast = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    monkeypatch.setattr(jobstore_module, "now", lambda: fast)
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim)
    monkeypatch.undo()
    server = store.server_now()
    job = job_of(store, msg.job_id)
    stamps = [job.created_at, job.updated_at, job.started_at, *(h["at"] for h in job.history)]
    assert all(s is not None and abs((s - server).total_seconds()) < 60 for s in stamps), stamps


def test_an_ended_job_expires_after_its_retention_and_a_retry_keeps_it(stack: Any, unique: str) -> None:
    store = JobStore(firestore.Client(project=stack.s.project), "jobs-state-tests", retention_days=2)
    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    assert job_of(store, msg.job_id).expire_at is None  # queued and running jobs never expire
    claim = store.claim(msg.job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim) and store.failed(claim, "not an image")
    job = job_of(store, msg.job_id)
    assert job.finished_at is not None and job.expire_at == job.finished_at + dt.timedelta(days=2)
    store.retry(msg.job_id)
    assert job_of(store, msg.job_id).expire_at is None
    refused = message(unique + "-refused")
    store.create(refused, "gs://b/enhance/x.jpg", 10, refused="imagen-format must be one of …")
    job = job_of(store, refused.job_id)
    assert job.status == JobStatus.FAILED and job.created_at is not None
    assert job.expire_at == job.created_at + dt.timedelta(days=2)
    forever = JobStore(firestore.Client(project=stack.s.project), "jobs-state-tests", retention_days=0)
    kept = message(unique + "-kept")
    forever.create(kept, "gs://b/enhance/x.jpg", 10, refused="bad")
    assert job_of(forever, kept.job_id).expire_at is None


def test_the_newest_jobs_come_from_every_shard_in_order(stack: Any, unique: str) -> None:
    """Jobs spread over the shards; a listing asks each and merges them newest first."""
    collection = f"jobs-shards-{unique}"
    db = firestore.Client(project=stack.s.project)
    store, queries = JobStore(db, collection), JobQueries(db, collection)
    made = [message(f"{unique}-{i}") for i in range(12)]
    for msg in made:
        store.create(msg, "gs://b/enhance/x.jpg", 10)
    shards = {job_of(store, m.job_id).shard for m in made}
    assert len(shards) > 1
    newest = queries.recent(5)
    assert [d["job_id"] for d in newest] == [m.job_id for m in reversed(made)][:5]
    assert [d["job_id"] for d in queries.recent(50, status=JobStatus.QUEUED)] == [
        m.job_id for m in reversed(made)
    ]


@pytest.mark.parametrize(("seconds", "rows", "most"), [(1, 10, 0), (300, 600, 9), (300, 20, 9)])
def test_progress_is_written_at_tenths_and_no_faster(
    store: JobStore, unique: str, seconds: float, rows: int, most: int
) -> None:
    """With production's lease (120 s): a job of a second writes no progress, one of five minutes
    at most nine (it wrote one a second before); the renewals carry it in between."""
    from imagen.core import usage
    from imagen.handlers.worker import Progress

    msg = message(unique)
    store.create(msg, "gs://b/enhance/x.jpg", 10)
    clock = [0.0]
    progress = Progress(store, msg.job_id, lease_s=120, clock=lambda: clock[0])
    with usage.metered("test") as meter:
        for row in range(1, rows + 1):
            clock[0] = seconds * row / rows
            progress.report(row / rows)
    writes = meter.counts[usage.FIRESTORE_WRITE]
    assert writes <= most and (most == 0 or writes >= 5), writes
    stored = job_of(store, msg.job_id).progress
    assert progress.latest == 1.0
    assert stored is None if most == 0 else stored is not None and 0.1 <= stored < 1.0


def test_a_job_from_before_shards_gets_one_at_its_next_move_or_from_the_tool(stack: Any, unique: str) -> None:
    from tools.add_shards import add_shards

    collection = f"jobs-unsharded-{unique}"
    db = firestore.Client(project=stack.s.project)
    store, queries = JobStore(db, collection), JobQueries(db, collection)
    old, other = message(f"{unique}-old"), message(f"{unique}-other")
    for msg in (old, other):
        store.create(msg, "gs://b/enhance/x.jpg", 10)
        db.collection(collection).document(msg.job_id).update({"shard": firestore.DELETE_FIELD})
    assert queries.recent(10) == []  # invisible to every sharded query
    assert isinstance(store.claim(old.job_id, lease_s=60, max_attempts=5), Claim)
    assert [d["job_id"] for d in queries.recent(10)] == [old.job_id]  # its claim gave it its shard
    assert add_shards(db, collection) == (2, 1)
    assert {d["job_id"] for d in queries.recent(10)} == {old.job_id, other.job_id}
    assert add_shards(db, collection) == (2, 0)
