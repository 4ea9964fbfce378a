"""Each job transition as a pure function of (job, now): no Firestore."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from imagen.jobs import transitions as t
from imagen.jobs.messages import JobMessage
from imagen.jobs.model import Claim, Job, JobStatus, Outcome, Skip

AT = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
MSG = JobMessage("j1", "enhance", "b", "enhance/x.jpg", "7")


def job(**fields: Any) -> Job:
    return Job.from_doc(
        {**t.created(MSG, AT - dt.timedelta(minutes=5), "gs://b/enhance/x.jpg", 10), **fields}
    )


def claimed(base: Job, at: dt.datetime = AT, lease_s: int = 60) -> tuple[Job, Claim]:
    """The job after `claim` (its update applied by hand, as the store would)."""
    got, update = t.claim(base, at, "h1", lease_s, max_attempts=3)
    assert isinstance(got, Claim) and update is not None
    return apply(base, update), got


def apply(base: Job, update: t.Update) -> Job:
    """What the store writes, on a plain document (for chaining transitions in a test)."""
    doc = {k: getattr(base, k) for k in base.__dataclass_fields__}
    doc.update(update.set)
    for name in update.delete:
        doc.pop(name, None)
    for name, n in update.increment.items():
        doc[name] = (doc.get(name) or 0) + n
    doc["history"] = [*base.history, *update.history]
    return Job.from_doc(doc)


def test_created_and_refused_documents_use_the_given_clock() -> None:
    doc = t.created(MSG, AT, "gs://b/enhance/x.jpg", 10, {"imagen-format": "png"})
    assert doc["created_at"] == doc["updated_at"] == doc["history"][0]["at"] == AT
    assert Job.from_doc(doc).status is JobStatus.QUEUED and Job.from_doc(doc).options == {
        "imagen-format": "png"
    }
    refused = Job.from_doc(t.created(MSG, AT, "gs://b/enhance/x.jpg", 10, refused="imagen-format: no"))
    assert refused.status is JobStatus.FAILED and refused.options_refused and refused.finished_at == AT
    assert [h["status"] for h in refused.history] == ["queued", "failed"]


def test_claim_takes_a_lease_and_says_why_it_cannot() -> None:
    running, got = claimed(job())
    assert got.attempt == 1 and got.claims == 1 and got.holder == "h1"
    assert running.status is JobStatus.RUNNING and running.lease_until == AT + dt.timedelta(seconds=60)
    assert running.history[-1] == {"status": "running", "at": AT, "attempt": 1}
    assert t.claim(running, AT + dt.timedelta(seconds=59), "h2", 60, 3) == (Skip.RUNNING_ELSEWHERE, None)
    again, update = t.claim(running, AT + dt.timedelta(seconds=61), "h2", 60, 3)  # the lease ran out
    assert isinstance(again, Claim) and again.attempt == 2 and update is not None
    assert t.claim(None, AT, "h", 60, 3) == (Skip.MISSING, None)
    assert t.claim(job(status="done"), AT, "h", 60, 3) == (Skip.DONE, None)
    assert t.claim(job(status="failed"), AT, "h", 60, 3) == (Skip.FAILED, None)


def test_claim_fails_a_job_out_of_attempts_with_its_last_error() -> None:
    outcome, update = t.claim(job(attempts=3, last_error="Transient: x"), AT, "h", 60, max_attempts=3)
    assert outcome is Outcome.FAILED_NOW and update is not None
    assert update.set["reason"] == "gave up after 3 attempts; last error: Transient: x"
    assert update.history[0]["gave_up"] is True
    fresh, _ = t.claim(job(attempts=3, retry_floor=3), AT, "h", 60, max_attempts=3)  # retried by a person
    assert isinstance(fresh, Claim) and fresh.attempt == 4


def test_only_the_current_claim_moves_the_job() -> None:
    running, got = claimed(job())
    stale = Claim(got.job_id, got.attempt, "someone else")
    assert t.renew(running, stale, AT, 60, {}) is None
    assert t.finish(running, stale, AT, JobStatus.DONE, {}) is None
    assert t.release(running, stale, AT, "late") == (None, None)
    update = t.renew(running, got, AT + dt.timedelta(seconds=20), 60, {"total_s": 3.0})
    assert update is not None and update.set["time_plan"] == {"total_s": 3.0}
    done = t.finish(running, got, AT, JobStatus.DONE, {"result_uri": "gs://b/r"})
    assert done is not None and done.set["status"] == "done" and done.set["lease_until"] is None


def test_a_release_for_a_service_gives_the_attempt_back_until_the_horizon() -> None:
    running, got = claimed(job())
    outcome, update = t.release(running, got, AT, "ServiceDown: refused", "triton", horizon_s=3600)
    assert outcome is Outcome.WAITING and update is not None
    assert (
        update.set["attempts"] == 0 and update.set["waiting_since"] == AT and update.increment == {"waits": 1}
    )
    waiting = apply(running, update)
    later = AT + dt.timedelta(hours=2)
    running_again, again = claimed(waiting, later)
    assert again.attempt == 1 and again.claims == 2 and running_again.waiting_since == AT
    outcome, update = t.release(running_again, again, later, "ServiceDown: still", "triton", horizon_s=3600)
    assert outcome is Outcome.FAILED_NOW and update is not None
    assert update.set["reason"] == (
        "waited 2.0 h for triton (WAIT_HORIZON_S) and gave up; last error: ServiceDown: still"
    )
    assert "last_error" not in update.set  # the reason carries it; the stored last_error stays
    plain, update = t.release(running, got, AT, "Transient: 500")
    assert plain is Outcome.REQUEUED and update is not None and "attempts" not in update.set


def test_a_delivery_turned_away_notes_the_wait_and_fails_past_the_horizon() -> None:
    outcome, update = t.note_waiting(job(), AT, "triton", "refused", horizon_s=3600)
    assert outcome is Outcome.WAITING and update is not None and update.set["waiting_for"] == "triton"
    long_ago = job(waiting_since=AT - dt.timedelta(hours=25), waiting_for="triton", last_error="refused")
    outcome, update = t.note_waiting(long_ago, AT, "triton", "refused", horizon_s=86_400)
    assert outcome is Outcome.FAILED_NOW and update is not None
    assert update.set["reason"].startswith("waited 25.0 h for triton")
    assert not t.waited_too_long(long_ago, AT, 100_000) and not t.waited_too_long(job(), AT, 1)


def test_the_dead_letter_verdicts() -> None:
    assert t.give_up(job(), AT, max_attempts=2)[0] is Outcome.REQUEUED  # no attempt was made
    outcome, update = t.give_up(job(requeues=2), AT, max_attempts=2)
    assert outcome is Outcome.FAILED_NOW and update is not None and update.history[0]["dead_letter"] is True
    waiting = job(waiting_for="triton", waiting_since=AT - dt.timedelta(hours=1), requeues=9)
    assert t.give_up(waiting, AT, max_attempts=2, horizon_s=86_400) == (Outcome.REQUEUED, t.Update())
    assert t.give_up(waiting, AT, max_attempts=2, horizon_s=3600)[0] is Outcome.FAILED_NOW
    assert t.give_up(job(status="done"), AT, 2)[0] is Skip.DONE


def test_retry_and_rerun_share_the_reset() -> None:
    failed = job(status="failed", attempts=3, reason="bad", event_published=True, waiting_for="triton")
    update = t.retry(failed, "j1", AT)
    assert (
        update.set["status"] == "queued" and update.set["retry_floor"] == 3 and update.set["publish_pending"]
    )
    assert {"reason", "event_published", "waiting_for", "waiting_since"} <= set(update.delete)
    with pytest.raises(ValueError, match="is queued; only failed jobs can be retried"):
        t.retry(job(), "j1", AT)
    with pytest.raises(ValueError, match="no job j1"):
        t.retry(None, "j1", AT)
    rerun = t.rerun(job(status="done", run=1, attempts=1), AT)
    assert rerun is not None and rerun.set["run"] == 2 and {"result_uri", "output"} <= set(rerun.delete)
    assert rerun.history[0] == {"status": "queued", "at": AT, "run": 2}
    assert t.rerun(job(), AT) is None
    assert t.rerun(job(status="failed", options_refused=True), AT) is None


def test_an_attempt_alive_at_the_function_timeout() -> None:
    lease_s = 120
    running = job(status="running", attempts=2, time_plan={"total_s": 200.0}, started_at=AT)
    died_early = apply(running, t.Update({"renewed_at": AT + dt.timedelta(seconds=300)}))
    assert t.ran_to_timeout(died_early, lease_s, 540) == ""
    # the reconciler's re-publishes move lease_until, never renewed_at
    republished = apply(died_early, t.Update({"lease_until": AT + dt.timedelta(seconds=3600)}))
    assert t.ran_to_timeout(republished, lease_s, 540) == ""
    at_timeout = apply(running, t.Update({"renewed_at": AT + dt.timedelta(seconds=520)}))
    reason = t.ran_to_timeout(at_timeout, lease_s, 540)
    assert reason.startswith("attempt 2 ran 520 s, to the function's timeout of 540 s")
    assert "its plan was 200 s" in reason
    assert t.ran_to_timeout(apply(at_timeout, t.Update({"status": "queued"})), lease_s, 540) == ""


def test_republished_restarts_the_clock_of_an_unfinished_job() -> None:
    running, _ = claimed(job())
    update = t.republished(running, AT)
    assert update is not None and update.set["lease_until"] == AT and update.increment == {"republishes": 1}
    assert t.republished(job(status="done"), AT) is None
    assert t.message_of(running) == MSG
