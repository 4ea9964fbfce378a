"""Exactly once under the hard sequences, on the whole stack at production's timing ratios
(lease 24 s against a 2..60 s delivery backoff and a 12 s reconciler: production's 120 s,
10..300 s and 60 s scaled by 1/5)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import requests

from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack
from imagen.core.names import object_name
from imagen.jobs.model import Claim, Outcome, Skip
from imagen.jobs.transitions import message_of
from tests.messages import push_body

from .conftest import log_events, upload, wait_finished, wait_until
from .test_exactly_once import big_photo, small_variant, statuses


def doc(jobs_col: Any, jid: str) -> dict[str, Any]:
    return jobs_col.document(jid).get().to_dict() or {}


@contextlib.contextmanager
def frozen_past_its_lease(jobs_col: Any, stack: Stack, jid: str) -> Iterator[None]:
    """The upscale worker running `jid` frozen (SIGSTOP: its renewals stop) until its lease has
    run out by the database's clock; the block runs then; the worker is thawed after it."""
    wait_until(lambda: doc(jobs_col, jid).get("status") == "running", 60, 0.1)
    pid = stack.pid_of("fn-on_job-upscale")
    assert pid
    os.killpg(pid, signal.SIGSTOP)
    try:
        lease = doc(jobs_col, jid)["lease_until"]
        wait_until(lambda: time.time() > lease.timestamp() + 1, 60, 0.5)
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


def wait_for_lost_claim(stack: StackSettings, jid: str) -> None:
    """Until the thawed worker has logged that it stopped: its claim is no longer the job's."""
    wait_until(
        lambda: any(
            "lost its claim" in r["status"]
            for r in log_events(stack, "fn-on_job-upscale", "job_skipped", jid)
        ),
        120,
    )


def test_sigkilled_worker_costs_one_attempt_not_the_retry_budget(
    bucket: Any, jobs_col: Any, stack: StackSettings, restore: Stack, unique: str
) -> None:
    """Redeliveries that meet the dead worker's live lease are acknowledged, not counted; the
    reconciler publishes the job once the lease has run out; the second attempt finishes it."""
    jid = upload(bucket, f"upscale/killed-{unique}/big.jpg", big_photo())
    wait_until(lambda: doc(jobs_col, jid).get("status") == "running", 60, 0.1)
    pid = restore.pid_of("fn-on_job-upscale")
    assert pid
    os.killpg(pid, signal.SIGKILL)
    restore.stop_one("fn-on_job-upscale")  # reaps it and clears its PID file
    restore.start(restore.service("fn-on_job-upscale"))

    job = wait_finished(jobs_col, jid, timeout_s=240)
    assert job["status"] == "done", job.get("reason")
    assert job["attempts"] == 2, "an attempt was spent on a delivery that met the live lease"
    assert statuses(job) == ["queued", "running", "running", "done"]
    skipped = log_events(stack, "fn-on_job-upscale", "job_skipped", jid)
    assert any(r["status"] == Skip.RUNNING_ELSEWHERE for r in skipped)  # the redelivery, acknowledged
    assert log_events(stack, "fn-on_reconcile", "job_reconciled", jid)


def test_stale_worker_writes_nothing_for_a_job_failed_under_it(
    bucket: Any, jobs_col: Any, stack: StackSettings, restore: Stack, unique: str
) -> None:
    """A worker frozen past its lease (its renewals stopped) while the dead-letter handler failed
    the job: when it wakes it stops, and no result object appears for the failed job."""
    jid = upload(bucket, f"upscale/stale-{unique}/big.jpg", big_photo())
    with frozen_past_its_lease(jobs_col, restore, jid):
        assert (
            stack.job_store().give_up(jid, max_attempts=1) is Outcome.FAILED_NOW
        )  # the dead-letter handler's move
    wait_for_lost_claim(stack, jid)
    job = doc(jobs_col, jid)
    assert job["status"] == "failed" and "result_uri" not in job
    name = stack.names.result_name("upscale", f"upscale/stale-{unique}/big.jpg")
    assert bucket.get_blob(name) is None, "a failed job has a result object"


def test_stale_worker_cannot_finish_or_requeue_the_job_another_holds(
    bucket: Any, jobs_col: Any, stack: StackSettings, restore: Stack, unique: str
) -> None:
    jid = upload(bucket, f"upscale/taken-{unique}/big.jpg", big_photo())
    with frozen_past_its_lease(jobs_col, restore, jid):
        taken = stack.job_store().claim(jid, lease_s=600, max_attempts=5)  # another worker took it
        assert isinstance(taken, Claim) and taken.attempt == 2
    wait_for_lost_claim(stack, jid)
    job = doc(jobs_col, jid)
    assert job["status"] == "running" and job["attempts"] == 2 and job["holder"] == taken.holder
    assert stack.job_store().failed(taken, "ended by the test") is True


def test_retry_whose_publish_fails_is_published_by_the_reconciler(
    bucket: Any, jobs_col: Any, stack: StackSettings, unique: str
) -> None:
    jid = upload(bucket, f"enhance/stuck-{unique}/empty.jpg", b"")
    assert wait_finished(jobs_col, jid)["status"] == "failed"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    env.update(IMAGEN_PORT_BASE=str(stack.port_base), TOPIC_PREFIX=f"nowhere-{unique}-")  # publish fails
    run = subprocess.run(
        [sys.executable, "-m", "imagen_cli", "--local", "retry", jid], env=env, capture_output=True, text=True
    )
    assert run.returncode == 2 and "the reconciler will publish it" in run.stderr
    assert doc(jobs_col, jid)["status"] == "queued"
    job = wait_finished(jobs_col, jid, timeout_s=120)  # no message was ever sent by the CLI
    assert job["status"] == "failed" and job["attempts"] == 2
    assert log_events(stack, "fn-on_reconcile", "job_reconciled", jid)


def test_dead_letter_between_attempts_does_not_fail_a_job_with_retries_left(
    bucket: Any, jobs_col: Any, stack: StackSettings, restore: Stack, unique: str
) -> None:
    """A duplicate's dead letter arrives while the real job is queued between attempts.

    It is sent while Triton is still down, so no delivery can run the job meanwhile: the dead
    letter meets it queued whatever the timing. Triton's outage costs the job no attempt (it
    waits), so the job still has its retries when Triton is back, and ends done."""
    restore.stop_one("triton")
    jid = upload(bucket, f"style_aged/dup-dead-{unique}/x.jpg", small_variant(1))
    wait_until(lambda: doc(jobs_col, jid).get("last_error"), 60)
    stored = stack.job_store().get(jid)
    assert stored is not None
    msg = message_of(stored)  # what the pipeline publishes for it
    topic = stack.names.topic_path(stack.names.dead_letter_topic)
    url = f"http://127.0.0.1:{stack.dead_letter_fn_port}/{topic}"
    assert requests.post(url, json=push_body(msg, attempt=5), timeout=60).status_code == 200
    assert doc(jobs_col, jid)["status"] == "queued"
    restore.start(restore.service("triton"))
    job = wait_finished(jobs_col, jid, timeout_s=180)
    assert job["status"] == "done", job.get("reason")


def test_pubsub_emulator_restart_is_survived_by_the_bridge(
    bucket: Any, jobs_col: Any, stack: StackSettings, restore: Stack, unique: str
) -> None:
    """The emulator forgets every topic and subscription; the bridge's pullers live on, restore
    them, and uploads after the restart flow end to end again."""
    restore.stop_one("pubsub")
    restore.start(restore.service("pubsub"))
    wait_until(lambda: any("restored" in line for line in _lines(stack, "bridge")), 60)
    jid = upload(bucket, f"style_aged/after-restart-{unique}/x.jpg", small_variant(2))
    job = wait_finished(jobs_col, jid, timeout_s=120)
    assert job["status"] == "done", job.get("reason")
    assert bucket.get_blob(object_name(job["result_uri"])) is not None


def _lines(stack: StackSettings, service: str) -> list[str]:
    path = stack.logs / f"{service}.log"
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def test_ctrl_c_with_stdout_gone_still_stops_every_process(tmp_path: Any) -> None:
    """`nox -s up 2>&1 | tee up.log`, Ctrl-C: tee dies first; the stack must still stop."""
    env = {**os.environ, "IMAGEN_PORT_BASE": "19600", "IMAGEN_STACK_DIR": str(tmp_path / "stack")}
    for key in [k for k in env if k.endswith("_EMULATOR_HOST")]:
        del env[key]
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    settings = StackSettings(
        project="imagen-local", bucket="imagen-local", port_base=19600, state_dir=tmp_path / "stack"
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # read until the stack is up, as tee would
            if b"The stack is up" in line:
                break
        assert len(Stack(settings).running()) >= 12
        proc.stdout.close()  # tee is gone
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        proc.wait(timeout=120)
        assert Stack(settings).running() == {}, "processes left running after Ctrl-C"
    finally:
        if proc.poll() is None:
            proc.kill()
        Stack(settings).down(lambda _m: None)


def test_an_upload_whose_event_was_lost_gets_its_job_from_the_reconciler(
    restore: Stack, stack: StackSettings, bucket: Any, jobs_col: Any, unique: str
) -> None:
    """The storage event of an upload never reaches on_upload (taken off the bridge's
    subscription while the bridge is down): the reconciler's scan finds the object without a job
    once it is older than the publish grace, creates the job, and the job runs to done."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    from .conftest import SAMPLE

    restore.stop_one("bridge")
    name = f"enhance/lost-event-{unique}/cat.jpg"
    jid = upload(bucket, name, SAMPLE.read_bytes())
    sub = pubsub_v1.SubscriberClient()
    path = sub.subscription_path(stack.project, stack.names.notification_subscription)

    def take_its_event() -> bool:
        resp = sub.pull(subscription=path, max_messages=50, timeout=5)
        ours = [m.ack_id for m in resp.received_messages if m.message.attributes.get("objectId") == name]
        others = [m.ack_id for m in resp.received_messages if m.message.attributes.get("objectId") != name]
        if others:  # not this test's: back to the bridge
            sub.modify_ack_deadline(subscription=path, ack_ids=others, ack_deadline_seconds=0)
        if ours:
            sub.acknowledge(subscription=path, ack_ids=ours)
        return bool(ours)

    wait_until(take_its_event, 30)
    restore.start(restore.service("bridge"))
    job = wait_finished(jobs_col, jid, timeout_s=150)
    assert job["status"] == "done" and job["attempts"] == 1
    created = log_events(stack, "fn-on_reconcile", "job_reconciled", jid)
    assert created and created[0]["status"] == "missing"
    assert not log_events(stack, "fn-on_upload", "job_created", jid)  # on_upload never saw it
