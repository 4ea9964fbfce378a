"""In-process tier: the handlers called here, against the real emulators (and the real Triton).

The session starts only Pub/Sub, Firestore and fake-gcs-server; Triton starts the first time a
test asks for it. No functions, no bridge: a test calls a handler (or the functions-framework
app of functions/main.py) itself, so what happens between two steps is the test's to choose.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack
from imagen.core.config import Config
from imagen.flow.services import Services
from imagen.handlers.upload import handle_upload
from imagen.handlers.worker import handle_job
from imagen.jobs import messages
from imagen.jobs.messages import JobMessage
from imagen.jobs.transitions import message_of
from tests.function_env import FUNCTION_ENV
from tests.messages import push_body

PORT_BASE = os.environ.get("IMAGEN_INTEGRATION_PORT_BASE", "19200")
EMULATORS = ("pubsub", "firestore", "gcs")
SAMPLE = ROOT / "samples" / "cat.jpg"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    s = StackSettings(
        project="imagen-it",
        bucket="imagen-it",
        port_base=int(PORT_BASE),
        # its own state (PID files, logs) per port base: runs on two bases never stop each other's
        state_dir=ROOT / ".stack-integration" / ("" if PORT_BASE == "19200" else f"base-{PORT_BASE}"),
    )
    os.environ.update(s.client_env())
    with Stack(s).session(lambda m: print(m, flush=True), only=EMULATORS) as st:
        yield st


@pytest.fixture(scope="session")
def triton(stack: Stack) -> Stack:
    """The real Triton (CPU configs), started once for the tests that infer."""
    if not stack.pid_of("triton"):
        from emulators.stack import build_models

        build_models(lambda m: print(m, flush=True))
        stack.start(stack.service("triton"))
    return stack


@pytest.fixture(scope="session")
def cfg(stack: Stack) -> Config:
    return Config.from_env({**stack.s.client_env(), **FUNCTION_ENV})


@pytest.fixture(scope="session")
def svc(cfg: Config) -> Services:
    return Services.from_config(cfg)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Harness:
    """Drives one upload through the handlers in this process."""

    cfg: Config
    svc: Services
    bucket_name: str

    @property
    def bucket(self) -> Any:
        return self.svc.storage.client.bucket(self.bucket_name)

    def put(
        self, name: str, data: bytes, content_type: str = "image/jpeg", **metadata: str
    ) -> dict[str, Any]:
        """Upload an object; returns its storage event data (what Eventarc would deliver)."""
        blob = self.bucket.blob(name)
        if metadata:
            blob.metadata = metadata
        blob.upload_from_string(data, content_type=content_type)
        props: dict[str, Any] = blob._properties
        return props

    def upload(self, name: str, data: bytes, content_type: str = "image/jpeg", **metadata: str) -> str:
        """Upload (with custom metadata) and run on_upload; returns the job id."""
        job_id = handle_upload(
            self.cfg, self.svc, messages.STORAGE_FINALIZED, self.put(name, data, content_type, **metadata)
        )
        assert job_id, f"{name} started no job"
        return job_id

    def message(self, job_id: str) -> JobMessage:
        """The job message that moves this job, as the pipeline builds it from the stored job."""
        job = self.svc.jobs.get(job_id)
        assert job is not None, f"no job {job_id}"
        return message_of(job)

    def run(self, job_id: str, model: str | None = None) -> dict[str, Any]:
        """One delivery of the job's message to on_job; returns the job afterwards."""
        cfg = replace(self.cfg, model_name=model or self.message(job_id).model)
        handle_job(cfg, self.svc, messages.PUBSUB_PUBLISHED, push_body(self.message(job_id)))
        return self.svc.jobs.document(job_id) or {}

    def process(
        self, name: str, data: bytes, content_type: str = "image/jpeg", **metadata: str
    ) -> dict[str, Any]:
        """Upload, on_upload, one on_job delivery: the job as it ends."""
        return self.run(self.upload(name, data, content_type, **metadata))

    def read(self, uri: str) -> bytes:
        from imagen.core.names import object_name

        data: bytes = self.bucket.blob(object_name(uri)).download_as_bytes()
        return data


@pytest.fixture(scope="session")
def harness(stack: Stack, cfg: Config, svc: Services) -> Harness:
    return Harness(cfg, svc, stack.s.bucket)


@pytest.fixture
def own_harness(harness: Harness, unique: str) -> Iterator[Harness]:
    """A harness with a bucket and a jobs collection of its own (named in its Config, as a
    deployment names them), for tests that count what a whole-bucket or whole-collection pass
    did: what other tests left in the shared ones cannot change the count."""
    bucket = f"it-own-{unique}"
    client = harness.svc.storage.client
    client.create_bucket(bucket)
    names = replace(harness.cfg.names, jobs_collection=f"jobs-{unique}")
    cfg = replace(harness.cfg, names=names, bucket=bucket)
    # Built as a deployment builds them from its Config; Triton's client and breaker are shared.
    svc = replace(Services.from_config(cfg), inference=harness.svc.inference, triton=harness.svc.triton)
    yield Harness(cfg, svc, bucket)
    for blob in client.list_blobs(bucket):
        blob.delete()
    client.bucket(bucket).delete()


def wait_until(check: Callable[[], Any], timeout_s: float = 60, every_s: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy (returned); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        time.sleep(every_s)


def sample_bytes(path: Path = SAMPLE) -> bytes:
    return path.read_bytes()
