"""The three functions of functions/main.py in this process, under functions-framework's own app,
against the real emulators and Triton: each way a delivery can end, and outages met mid-call."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from functions_framework import create_app
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from emulators.stack import Stack
from imagen.core.config import Config
from imagen.core.errors import ServiceDown
from imagen.core.names import object_name
from imagen.handlers.worker import handle_job
from imagen.jobs import messages
from imagen.jobs.messages import RESULT_MARKER
from imagen.jobs.model import Claim, Outcome
from imagen.jobs.transitions import waited_too_long
from tests import event_schemas
from tests.function_env import FUNCTION_ENV
from tests.messages import events_for, pull_for, push_body

from .conftest import SAMPLE, Harness, wait_until

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")


@pytest.fixture
def app_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The environment a deployed function gets, pointed at this tier's emulators and Triton."""
    for key, value in {**stack.s.client_env(), **FUNCTION_ENV}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("OTEL_ENABLED", raising=False)
    monkeypatch.delenv("MODEL_NAME", raising=False)
    return stack


def app(target: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return create_app(target, MAIN, "cloudevent").test_client()


def storage_event_headers(event: dict[str, Any]) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": f"{event['name']}-{event['generation']}",
        "ce-type": messages.STORAGE_FINALIZED,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{event['bucket']}",
        "Content-Type": "application/json",
    }


@pytest.fixture
def subscriber(cfg: Config, unique: str) -> Iterator[Any]:
    """Opens pull subscriptions on the system's topics for one test; deletes them after."""
    sub = pubsub_v1.SubscriberClient()
    made: list[str] = []

    def open_(topic: str) -> str:
        path = cfg.names.subscription_path(f"it-{unique}-{len(made)}")
        sub.create_subscription(name=path, topic=cfg.names.topic_path(topic))
        made.append(path)
        return path

    yield sub, open_
    for path in made:
        sub.delete_subscription(subscription=path)


def wait_past_the_horizon(harness: Harness, job_id: str, horizon_s: int) -> None:
    """Until the job has waited `horizon_s` by the database's clock (what the handlers compare)."""
    wait_until(
        lambda: waited_too_long(harness.svc.jobs.get(job_id), harness.svc.jobs.server_now(), horizon_s),
        timeout_s=horizon_s + 30,
    )


def in_grpc_call(thread: threading.Thread) -> bool:
    """Whether `thread` is waiting inside a gRPC call now."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if f"{os.sep}grpc{os.sep}" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def test_on_upload_queues_the_job_and_publishes_it_without_trace_context(
    app_env: Stack, harness: Harness, subscriber: Any, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    sub, open_ = subscriber
    path = open_(harness.cfg.names.job_topic("enhance"))
    event = harness.put(f"enhance/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    client = app("on_upload", monkeypatch)
    resp = client.post("/", data=json.dumps(event), headers=storage_event_headers(event))
    assert resp.status_code == 200
    job_id = messages.job_id(event["bucket"], event["name"], str(event["generation"]))
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "queued" and job["attempts"] == 0
    message = pull_for(sub, path, job_id)
    assert json.loads(message.data)["name"] == event["name"]
    assert "traceparent" not in message.attributes  # tracing is off unless OTEL_ENABLED
    # The same event again (Eventarc is at least once): one job, published again while queued.
    assert client.post("/", data=json.dumps(event), headers=storage_event_headers(event)).status_code == 200
    assert pull_for(sub, path, job_id).attributes["job_id"] == job_id


def test_on_job_runs_the_job_to_done_and_announces_it(
    app_env: Stack,
    triton: Stack,
    harness: Harness,
    subscriber: Any,
    monkeypatch: pytest.MonkeyPatch,
    unique: str,
) -> None:
    sub, open_ = subscriber
    events_path = open_(harness.cfg.names.events_topic)
    job_id = harness.upload(
        f"style_aged/it-{unique}/cat.jpg", SAMPLE.read_bytes(), **{"imagen-format": "png"}
    )
    client = app("on_job", monkeypatch, MODEL_NAME="style_aged")
    topic = harness.cfg.names.topic_path(harness.cfg.names.job_topic("style_aged"))
    resp = client.post(f"/{topic}", json=push_body(harness.message(job_id)))
    assert resp.status_code == 200
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "done" and job["attempts"] == 1 and job["event_published"] is True
    result = harness.bucket.get_blob(object_name(job["result_uri"]))
    assert result.metadata[RESULT_MARKER] == job_id and result.content_type == "image/png"
    got = {m.attributes["ce-type"]: m for m in events_for(sub, events_path, job_id, "imagen.job.v1.done")}
    start = got.get("imagen.job.v1.started") or pull_for(sub, events_path, job_id, skip=())  # no order kept
    event = got["imagen.job.v1.done"]
    assert start.attributes["ce-type"] == "imagen.job.v1.started"
    started, ended = event_schemas.check(start), event_schemas.check(event)
    assert start.attributes["ce-id"] == f"{job_id}-started-1" and started["attempt"] == 1
    assert started["options"] == ended["options"] == {"imagen-format": "png"}  # each event says the options
    assert event.attributes["result_uri"] == job["result_uri"]
    assert ended["output"]["format"] == "PNG"
    # A second delivery of the same message finds the job done: acknowledged, nothing run again.
    assert client.post(f"/{topic}", json=push_body(harness.message(job_id))).status_code == 200
    assert (harness.svc.jobs.document(job_id) or {})["attempts"] == 1


def test_triton_down_costs_time_not_attempts(
    app_env: Stack, harness: Harness, subscriber: Any, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    """The first delivery meets the outage (its attempt given back); the instance's breaker
    then turns deliveries away unclaimed; the dead letter publishes the waiting job again; past
    the wait horizon the job fails with that reason."""
    sub, open_ = subscriber
    events_path = open_(harness.cfg.names.events_topic)
    job_id = harness.upload(f"enhance/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    client = app(
        "on_job",
        monkeypatch,
        MODEL_NAME="enhance",
        TRITON_URL="127.0.0.1:9",
        TRITON_TIMEOUT_S="5",
        TRITON_PROBE_S="3600",  # no probe within this test: the breaker stays open
        MAX_ATTEMPTS="2",
    )
    topic = harness.cfg.names.topic_path(harness.cfg.names.job_topic("enhance"))
    dead = app("on_dead_letter", monkeypatch)
    dl_topic = harness.cfg.names.topic_path(harness.cfg.names.dead_letter_topic)

    assert client.post(f"/{topic}", json=push_body(harness.message(job_id))).status_code == 500
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "queued" and job["attempts"] == 0 and job["waiting_for"] == "triton"
    assert "Triton unreachable at 127.0.0.1:9" in job["last_error"] and job["waits"] == 1
    assert job.get("lease_until") is None and job["history"][-1]["waiting_for"] == "triton"
    claims = sum(1 for h in job["history"] if h["status"] == "running")

    for _ in range(MAX_DELIVERIES := 6):  # more deliveries than attempts: none is claimed
        assert client.post(f"/{topic}", json=push_body(harness.message(job_id))).status_code == 500
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "queued" and job["attempts"] == 0 and job["waits"] == 1 + MAX_DELIVERIES
    assert sum(1 for h in job["history"] if h["status"] == "running") == claims == 1

    assert dead.post(f"/{dl_topic}", json=push_body(harness.message(job_id), attempt=5)).status_code == 200
    assert (harness.svc.jobs.document(job_id) or {})["status"] == "queued"  # published again, not failed
    # Past the horizon: the next delivery fails it, with that reason (and is acknowledged).
    wait_past_the_horizon(harness, job_id, 1)
    late = app("on_job", monkeypatch, WAIT_HORIZON_S="1")
    assert late.post(f"/{topic}", json=push_body(harness.message(job_id))).status_code == 200
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "failed" and job["attempts"] == 0
    assert job["reason"].startswith("waited 0.0 h for triton (WAIT_HORIZON_S) and gave up; last error: ")
    assert job["history"][-1]["waited"] is True
    failed = pull_for(sub, events_path, job_id)
    assert failed.attributes["ce-type"] == "imagen.job.v1.failed" and event_schemas.check(failed)["reason"]


def test_the_dead_letter_fails_a_waiting_job_past_the_horizon(
    app_env: Stack, harness: Harness, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    job_id = harness.upload(f"enhance/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    assert harness.svc.jobs.note_waiting(job_id, "triton", "Connection refused", 3600) is Outcome.WAITING
    wait_past_the_horizon(harness, job_id, 1)
    dead = app("on_dead_letter", monkeypatch, WAIT_HORIZON_S="1")
    dl_topic = harness.cfg.names.topic_path(harness.cfg.names.dead_letter_topic)
    assert dead.post(f"/{dl_topic}", json=push_body(harness.message(job_id), attempt=5)).status_code == 200
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "failed" and "for triton (WAIT_HORIZON_S)" in job["reason"]
    assert "Connection refused" in job["reason"] and job["history"][-1]["waited"] is True


def test_when_triton_answers_again_the_waiting_job_runs_on_its_first_attempt(
    triton: Stack, harness: Harness, unique: str
) -> None:
    """The breaker, open, probes at its interval; the probe that finds Triton closes it."""
    from imagen.flow.services import Services
    from imagen.inference.breaker import Breaker

    clock = [0.0]  # the breaker's own clock, moved by the test: no waiting on the real one
    svc = Services(
        harness.svc.storage,
        harness.svc.jobs,
        harness.svc.queries,
        harness.svc.publisher,
        harness.svc.inference,
        Breaker("triton", harness.svc.inference.ready, 1, clock=lambda: clock[0]),
    )
    job_id = harness.upload(f"style_aged/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    svc.triton.trip("Connection refused (the outage)")
    cfg = replace(harness.cfg, model_name="style_aged")
    body = push_body(harness.message(job_id))
    with pytest.raises(ServiceDown):
        handle_job(cfg, svc, messages.PUBSUB_PUBLISHED, body)
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "queued" and job["attempts"] == 0 and job["waiting_for"] == "triton"
    clock[0] += 1  # the probe interval has passed: the next delivery probes, finds Triton ready, runs
    handle_job(cfg, svc, messages.PUBSUB_PUBLISHED, body)
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "done" and job["attempts"] == 1 and "waiting_for" not in job
    assert svc.triton.probes == 1 and not svc.triton.open
    assert job["output"]["time_plan"]["tiles"] == job["output"]["tiles"]


def test_an_attempt_that_ran_to_the_function_timeout_is_not_run_again(
    app_env: Stack, harness: Harness, unique: str
) -> None:
    """Its worker renewed the lease until the platform stopped it at the timeout: the next
    delivery fails the job with that reason instead of running it blind."""
    import datetime as dt

    job_id = harness.upload(f"enhance/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    claim = harness.svc.jobs.claim(job_id, lease_s=8, max_attempts=5, function_timeout_s=540)
    assert isinstance(claim, Claim)
    now = harness.svc.jobs.server_now()
    harness.svc.jobs.col.document(job_id).update(
        {
            "started_at": now - dt.timedelta(seconds=560),
            "renewed_at": now - dt.timedelta(seconds=15),  # renewed up to 545 s after its start
            "lease_until": now - dt.timedelta(seconds=7),
            "time_plan": {"total_s": 120.0},
        }
    )
    cfg = replace(harness.cfg, model_name="enhance", function_timeout_s=540, job_time_limit_s=360)
    handle_job(cfg, harness.svc, messages.PUBSUB_PUBLISHED, push_body(harness.message(job_id)))
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "failed" and job["history"][-1]["timed_out"] is True
    assert "to the function's timeout of 540 s" in job["reason"] and "its plan was 120 s" in job["reason"]


def test_a_job_over_the_time_limit_fails_at_once_with_its_plan(
    triton: Stack, harness: Harness, unique: str
) -> None:
    from emulators.settings import LOCAL_TILE_SECONDS  # this CPU's figures: a tile of fidelity 3.5 s

    cfg = replace(
        harness.cfg,
        model_name="upscale",
        job_time_limit_s=10,
        function_timeout_s=15,
        tile_seconds=LOCAL_TILE_SECONDS,
    )
    job_id = harness.upload(
        f"upscale/it-{unique}/cat.jpg", SAMPLE.read_bytes(), **{"imagen-upscale": "fidelity"}
    )
    handle_job(cfg, harness.svc, messages.PUBSUB_PUBLISHED, push_body(harness.message(job_id)))
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "failed" and job["attempts"] == 1
    assert "over the limit of 10 s per job (JOB_TIME_LIMIT_S)" in job["reason"]
    assert "tiles x" in job["reason"]


def test_a_job_a_worker_holds_is_left_to_it(
    app_env: Stack, harness: Harness, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    """Neither a dead letter nor a duplicate delivery touches a job while its lease is live, and
    neither counts as an attempt (both are acknowledged: the reconciler covers a dead worker)."""
    job_id = harness.upload(f"enhance/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    claim = harness.svc.jobs.claim(job_id, lease_s=60, max_attempts=5)
    assert isinstance(claim, Claim)
    dead = app("on_dead_letter", monkeypatch)
    dl_topic = harness.cfg.names.topic_path(harness.cfg.names.dead_letter_topic)
    assert dead.post(f"/{dl_topic}", json=push_body(harness.message(job_id))).status_code == 200
    handle_job(harness.cfg, harness.svc, messages.PUBSUB_PUBLISHED, push_body(harness.message(job_id)))
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "running" and job["attempts"] == 1


def test_message_for_another_model_is_dropped_with_a_log(
    app_env: Stack, harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: Any, unique: str
) -> None:
    job_id = harness.upload(f"enhance/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    client = app("on_job", monkeypatch, MODEL_NAME="upscale")
    assert client.post("/", json=push_body(harness.message(job_id))).status_code == 200
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert any(r["event"] == "bad_message" and "this worker runs upscale" in r["reason"] for r in lines)
    assert (harness.svc.jobs.document(job_id) or {})["status"] == "queued"


def test_firestore_frozen_during_on_upload(stack: Stack, harness: Harness, unique: str) -> None:
    """The upload's job write waits out the outage (the call was in flight while it lasted)."""
    event = harness.put(f"enhance/it-fs-{unique}/cat.jpg", SAMPLE.read_bytes())
    pid = stack.pid_of("firestore")
    assert pid
    result: list[str | None] = []
    os.kill(pid, signal.SIGSTOP)  # unreachable without losing its in-memory data
    try:
        from imagen.handlers.upload import handle_upload

        call = threading.Thread(
            target=lambda: result.append(
                handle_upload(harness.cfg, harness.svc, messages.STORAGE_FINALIZED, event)
            )
        )
        call.start()
        # The outage is met once the call waits on a Firestore RPC the frozen server cannot answer.
        wait_until(lambda: in_grpc_call(call) or not call.is_alive(), timeout_s=60)
        assert call.is_alive(), "on_upload finished while Firestore was frozen: the fault was not met"
    finally:
        os.kill(pid, signal.SIGCONT)
    call.join(timeout=120)
    assert result and result[0]
    job = harness.svc.jobs.document(result[0]) or {}
    assert job["status"] == "queued" and job["object"] == event["name"]


class RefusalsSeen(requests.Session):
    """The storage client's HTTP session, noting when a request found storage unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = threading.Event()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().request(*args, **kwargs)
        except requests.ConnectionError:
            self.refused.set()
            raise


def test_storage_down_while_a_job_starts(stack: Stack, triton: Stack, harness: Harness, unique: str) -> None:
    """The worker's download waits out a storage outage and the job still ends done, once."""
    from google.cloud import storage  # type: ignore[attr-defined]

    from imagen.cloud.objects import ObjectStore

    job_id = harness.upload(f"style_aged/it-gcs-{unique}/cat.jpg", SAMPLE.read_bytes())
    http = RefusalsSeen()
    client = storage.Client(project=harness.cfg.project, _http=http)
    worker = replace(harness, svc=replace(harness.svc, storage=ObjectStore(client)))
    stack.stop_one("gcs")
    ended: list[dict[str, Any]] = []
    try:
        call = threading.Thread(target=lambda: ended.append(worker.run(job_id)))
        call.start()
        assert http.refused.wait(60), "the job never reached storage"  # the outage, met
        job = harness.svc.jobs.document(job_id) or {}
        assert call.is_alive() and job["status"] == "running", "the job did not wait out the outage"
    finally:
        stack.start(stack.service("gcs"))
    call.join(timeout=180)
    assert ended and ended[0]["status"] == "done", ended and ended[0].get("reason")
    assert ended[0]["attempts"] == 1  # the outage cost time, not an attempt
    assert [h["status"] for h in ended[0]["history"]].count("done") == 1
    assert harness.bucket.get_blob(object_name(ended[0]["result_uri"])) is not None


def test_whole_image_model_writes_an_rgba_png(triton: Stack, harness: Harness, unique: str) -> None:
    import io

    from PIL import Image

    job = harness.process(f"background_remove/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    assert job["status"] == "done", job.get("reason")
    assert job["result_uri"].endswith(".png") and job["output"]["format"] == "PNG"
    result = Image.open(io.BytesIO(harness.read(job["result_uri"])))
    assert result.mode == "RGBA" and result.size == Image.open(SAMPLE).size


def test_the_reconciler_gives_an_object_with_no_job_its_job_once(
    own_harness: Harness, subscriber: Any
) -> None:
    """An upload whose storage event was lost gets its job from the reconciler's scan, once; an
    object already processed (its result there), a result and a fresh upload are left alone.
    (Its own bucket and collection: the pass's count is this test's objects' alone.)"""
    from imagen.handlers.reconciler import create_missing_jobs

    harness = own_harness
    sub, open_ = subscriber
    path = open_(harness.cfg.names.job_topic("enhance"))
    lost = harness.put("enhance/orphan/lost.jpg", SAMPLE.read_bytes())  # no on_upload
    done = harness.put("enhance/orphan/done.jpg", SAMPLE.read_bytes())
    result = harness.cfg.names.result_name("enhance", done["name"])
    harness.put(result, b"result", **{"imagen-source-generation": str(done["generation"])})
    cfg = replace(harness.cfg, reconcile_publish_grace_s=0, reconcile_scan_max=10_000)

    def job_of(event: dict[str, Any]) -> str:
        return messages.job_id(event["bucket"], event["name"], str(event["generation"]))

    assert create_missing_jobs(cfg, harness.svc) == 1  # lost.jpg, and nothing else
    job = harness.svc.jobs.document(job_of(lost)) or {}
    assert job["status"] == "queued" and job["object"] == lost["name"]
    assert json.loads(pull_for(sub, path, job_of(lost)).data)["name"] == lost["name"]
    assert harness.svc.jobs.document(job_of(done)) is None  # processed already: not again
    assert create_missing_jobs(cfg, harness.svc) == 0  # idempotent
    waiting = replace(cfg, reconcile_publish_grace_s=3600)
    fresh = harness.put("enhance/orphan/fresh.jpg", SAMPLE.read_bytes())
    assert create_missing_jobs(waiting, harness.svc) == 0  # its event may still come
    assert harness.svc.jobs.document(job_of(fresh)) is None


def test_a_locked_job_does_not_stop_the_reconciler_from_moving_the_others(own_harness: Harness) -> None:
    """One stuck job's document stays locked (as a worker killed inside a transaction leaves it
    on the emulator): the pass logs that job and still republishes the other. (Its own
    collection: the stuck jobs the pass finds are these two alone.)"""
    from google.cloud import firestore

    from imagen.handlers.reconciler import handle_reconcile

    harness = own_harness
    ids = [harness.upload(f"enhance/it/stuck-{i}.jpg", SAMPLE.read_bytes()) for i in range(2)]
    for job_id in ids:
        assert isinstance(harness.svc.jobs.claim(job_id, lease_s=1, max_attempts=5), Claim)
    # both leases run out (by the database's clock): both are stuck
    wait_until(lambda: {j.job_id for j in harness.svc.queries.stuck(0, 3600, 3600)} == set(ids), 30)
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        @firestore.transactional
        def inside(tx: Any) -> None:
            harness.svc.jobs.col.document(ids[0]).get(transaction=tx)
            locked.set()
            release.wait(60)

        with contextlib.suppress(Exception):
            inside(harness.svc.jobs.db.transaction())

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(10)
        cfg = replace(harness.cfg, reconcile_lease_margin_s=0, bucket="")  # no scan: the stuck pass alone
        assert handle_reconcile(cfg, harness.svc) == 1  # the unlocked one; the locked one is logged
    finally:
        release.set()
        holder.join()
    assert (harness.svc.jobs.document(ids[1]) or {}).get("republishes") == 1
    assert (harness.svc.jobs.document(ids[0]) or {}).get(
        "republishes"
    ) is None  # logged, left to the next pass


def test_a_crashed_attempt_republished_for_a_long_time_still_runs_again(
    app_env: Stack, harness: Harness, unique: str
) -> None:
    """The reconciler's re-publishes move a dead attempt's lease, never its renewals: a job whose
    worker died early is claimed again however long its re-publishes went on."""
    import datetime as dt

    job_id = harness.upload(f"enhance/it-{unique}/cat.jpg", SAMPLE.read_bytes())
    assert isinstance(
        harness.svc.jobs.claim(job_id, lease_s=8, max_attempts=5, function_timeout_s=540), Claim
    )
    now = harness.svc.jobs.server_now()
    harness.svc.jobs.col.document(job_id).update(
        {
            "started_at": now - dt.timedelta(seconds=900),
            "renewed_at": now - dt.timedelta(seconds=880),  # died 20 s into its attempt
            "lease_until": now - dt.timedelta(seconds=860),
        }
    )
    for _ in range(3):  # a quarter of an hour of reconciler passes, each moving lease_until
        harness.svc.jobs.republished(job_id)
    assert (harness.svc.jobs.document(job_id) or {})["lease_until"] > now
    harness.svc.jobs.col.document(job_id).update({"lease_until": now - dt.timedelta(seconds=1)})
    again = harness.svc.jobs.claim(job_id, lease_s=8, max_attempts=5, function_timeout_s=540)
    assert isinstance(again, Claim) and again.attempt == 2 and again.claims == 2
