"""Who pays for a fault: the service's (the job waits, its attempt kept) or the job's own."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from google.api_core import exceptions as gexc
from tritonclient.utils import InferenceServerException

from imagen.errors import BadInput, ServiceDown, Transient
from imagen.inference import InferStats, triton_fault
from imagen.jobs import ran_to_timeout, waited_reason, waited_too_long
from imagen.storage_io import storage_faults
from imagen.timeplan import TimePlan
from imagen.worker import Deadline


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("503", "Exceeds maximum queue size"),  # Triton's queue policy: full
        ("503", "Request timeout expired"),  # waited past the model's queue timeout
        ("400", "Request for unknown model: 'enhance' is not found"),  # loading after a restart
        ("500", "Stub process 'enhance_0' is not healthy."),
        (None, "failed to connect"),
    ],
)
def test_triton_busy_or_down_is_the_services_fault(status: str | None, message: str) -> None:
    fault = triton_fault("enhance", InferenceServerException(message, status))
    assert isinstance(fault, ServiceDown) and fault.service == "triton" and message in str(fault)


def test_a_bad_request_is_the_jobs_own() -> None:
    fault = triton_fault("enhance", InferenceServerException("unexpected shape for input 'IMAGE'", "400"))
    assert type(fault) is Transient


@pytest.mark.parametrize(
    "exc",
    [
        gexc.ServiceUnavailable("backend"),
        gexc.InternalServerError("oops"),
        gexc.TooManyRequests("slow down"),
        requests.ConnectionError("refused"),
        TimeoutError("read timed out"),
    ],
)
def test_storage_faults_wait(exc: Exception) -> None:
    with pytest.raises(ServiceDown) as caught, storage_faults("reading the upload"):
        raise exc
    assert caught.value.service == "storage" and "while reading the upload" in str(caught.value)


def test_storage_answers_about_the_object_pass_through() -> None:
    with pytest.raises(gexc.NotFound), storage_faults("reading the upload"):
        raise gexc.NotFound("gone")


PLAN = TimePlan(decode_s=1, prepare_s=0, infer_s=8, encode_s=1, tiles=80, tile_s=0.1, scale=1)


def test_a_job_whose_own_work_runs_far_past_its_plan_fails() -> None:
    stats = InferStats()
    Deadline(PLAN, 540, stats, time.monotonic()).check()  # on time: nothing
    late = Deadline(PLAN, 540, stats, time.monotonic() - 71)  # 3x 10 s, at least +60 s: 70 s
    with pytest.raises(BadInput, match=r"stopped after 71 s \(71 s of its own work\): far past its plan"):
        late.check()


def test_a_job_slowed_by_triton_near_the_timeout_waits_instead() -> None:
    stats = InferStats(wait_s=480)  # its own work: 10 s of 490
    slow = Deadline(PLAN, 540, stats, time.monotonic() - 490)
    with pytest.raises(ServiceDown) as caught:
        slow.check()
    assert caught.value.service == "triton" and not caught.value.trip  # slow for this job only


AT = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def test_the_wait_horizon() -> None:
    job = {"waiting_since": AT - dt.timedelta(hours=25), "waiting_for": "triton", "last_error": "refused"}
    assert waited_too_long(job, AT, 86_400) and not waited_too_long(job, AT, 100_000)
    assert not waited_too_long({}, AT, 1)
    assert waited_reason(job, AT) == (
        "waited 25.0 h for triton (WAIT_HORIZON_S) and gave up; last error: refused"
    )


def test_an_attempt_alive_at_the_function_timeout() -> None:
    lease_s = 120
    running = {"status": "running", "attempts": 2, "time_plan": {"total_s": 200.0}}
    died_early = {**running, "started_at": AT, "lease_until": AT + dt.timedelta(seconds=300 + lease_s)}
    assert ran_to_timeout(died_early, lease_s, 540) == ""
    at_timeout = {**running, "started_at": AT, "lease_until": AT + dt.timedelta(seconds=520 + lease_s)}
    reason = ran_to_timeout(at_timeout, lease_s, 540)
    assert reason.startswith("attempt 2 ran 520 s, to the function's timeout of 540 s")
    assert "its plan was 200 s" in reason
    assert ran_to_timeout({**at_timeout, "status": "queued"}, lease_s, 540) == ""
