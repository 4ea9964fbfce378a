"""Session fixtures: one real local stack (emulators, Triton, functions) for all system tests."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack
from imagen.jobs.model import is_finished
from tests.function_env import SYSTEM_FUNCTION_ENV

TEST_PORT_BASE = os.environ.get("IMAGEN_TEST_PORT_BASE", "19000")
SAMPLE = ROOT / "samples" / "cat.jpg"


@pytest.fixture(scope="session")
def stack() -> Iterator[StackSettings]:
    os.environ["IMAGEN_PORT_BASE"] = TEST_PORT_BASE
    os.environ["IMAGEN_STACK_DIR"] = str(ROOT / ".stack-test")
    s = dataclasses.replace(StackSettings.from_env(), function_env=SYSTEM_FUNCTION_ENV)
    os.environ.update(s.client_env())
    with Stack(s).session(lambda m: print(m, flush=True)):
        yield s


@pytest.fixture(scope="session")
def stack_control(stack: StackSettings) -> Stack:
    return Stack(stack)


@pytest.fixture
def restore(stack_control: Stack) -> Iterator[Stack]:
    """For tests that stop or pause services: everything is running again afterwards."""
    yield stack_control
    running = stack_control.running()
    for svc in stack_control.services():
        if svc.name not in running:
            stack_control.start(svc)


@pytest.fixture(scope="session")
def bucket(stack: StackSettings) -> Any:
    return stack.bucket_handle()


@pytest.fixture(scope="session")
def jobs_col(stack: StackSettings) -> Any:
    return stack.job_store().col


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


def wait_until(check: Callable[[], Any], timeout_s: float = 120, every_s: float = 0.25) -> Any:
    """Poll `check` until it returns something truthy; fail with a message after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s}s")


def log_lines(s: StackSettings, service: str) -> list[str]:
    path: Path = s.logs / f"{service}.log"
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def log_events(s: StackSettings, service: str, event: str, job_id: str | None = None) -> list[dict[str, Any]]:
    """The named structured log events a function wrote (optionally for one job)."""
    out = []
    for line in log_lines(s, service):
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("event") == event and (job_id is None or rec.get("job_id") == job_id):
                out.append(rec)
    return out


def finished(jobs_col: Any, jid: str) -> dict[str, Any] | None:
    snap = jobs_col.document(jid).get()
    doc = snap.to_dict() if snap.exists else None
    return doc if is_finished(doc) else None


def wait_finished(jobs_col: Any, jid: str, timeout_s: float = 180) -> dict[str, Any]:
    doc: dict[str, Any] = wait_until(lambda: finished(jobs_col, jid), timeout_s=timeout_s)
    return doc


def upload(bucket: Any, name: str, data: bytes, content_type: str = "image/jpeg", **metadata: str) -> str:
    """Upload and return the job id its generation maps to."""
    from imagen.jobs.messages import job_id

    blob = bucket.blob(name)
    if metadata:
        blob.metadata = metadata
    blob.upload_from_string(data, content_type=content_type)
    return job_id(bucket.name, name, str(blob.generation))
