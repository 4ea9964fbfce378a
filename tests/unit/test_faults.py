"""Who pays for a fault: the service's (the job waits, its attempt kept) or the job's own."""

from __future__ import annotations

import time

import pytest
import requests
from google.api_core import exceptions as gexc
from tritonclient.utils import InferenceServerException

from imagen.cloud.objects import storage_faults
from imagen.core.config import Config
from imagen.core.errors import BadInput, ServiceDown, Transient
from imagen.handlers.worker import Deadline
from imagen.image.timeplan import TimePlan
from imagen.inference.runner import InferStats, triton_fault


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("503", "Exceeds maximum queue size"),  # Triton's queue policy: full
        ("503", "Request timeout expired"),  # waited past the model's queue timeout
        ("400", "Request for unknown model: 'enhance' is not found"),  # loading after a restart
        ("500", "Stub process 'enhance_0' is not healthy."),
        ("502", "Bad Gateway"),  # a proxy in front of Triton with nothing behind it
    ],
)
def test_triton_busy_or_down_is_the_services_fault(status: str | None, message: str) -> None:
    fault = triton_fault("enhance", InferenceServerException(message, status))
    assert isinstance(fault, ServiceDown) and fault.service == "triton" and message in str(fault)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("400", "unexpected shape for input 'IMAGE'"),
        ("500", "onnxruntime execution failed: invalid dimensions"),  # this request's, every time
    ],
)
def test_an_error_of_the_request_is_the_jobs_own(status: str, message: str) -> None:
    assert type(triton_fault("enhance", InferenceServerException(message, status))) is Transient


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
PROD = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})  # timeout 540 s: the wall limit is 390 s


def deadline(ago_s: float, triton_s: float = 0.0, io_s: float = 0.0) -> Deadline:
    return Deadline(PLAN, PROD, InferStats(wait_s=triton_s), time.monotonic() - ago_s, lambda: io_s)


def test_a_job_whose_own_work_runs_far_past_its_plan_fails() -> None:
    deadline(5).check()  # on time: nothing
    with pytest.raises(BadInput, match=r"stopped after 71 s \(71 s of its own work.*far past its plan"):
        deadline(71).check()  # 3x 10 s, at least +60 s: 70 s


def test_waits_for_triton_and_storage_are_not_the_jobs_own_work() -> None:
    deadline(200, triton_s=100, io_s=60).check()  # 40 s of its own: on plan


def test_near_the_timeout_a_job_slowed_by_triton_waits_instead() -> None:
    with pytest.raises(ServiceDown) as caught:
        deadline(395, triton_s=380).check()  # Triton took 380 s of a planned 8
    assert caught.value.service == "triton" and not caught.value.trip  # slow for this job only


def test_near_the_timeout_a_job_slowed_by_storage_waits_instead() -> None:
    with pytest.raises(ServiceDown) as caught:
        deadline(395, triton_s=20, io_s=330).check()
    assert caught.value.service == "storage" and not caught.value.trip


def test_near_the_timeout_a_job_whose_plan_was_too_low_fails() -> None:
    big = TimePlan(decode_s=5, prepare_s=0, infer_s=100, encode_s=5, tiles=1000, tile_s=0.1, scale=1)
    late = Deadline(big, PROD, InferStats(wait_s=80), time.monotonic() - 395, lambda: 15.0)
    with pytest.raises(BadInput, match="near the function's timeout: its plan of"):
        late.check()  # its own 300 s, under its own limit of 330 s; Triton and storage on plan
