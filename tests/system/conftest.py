"""Session fixtures: one real local stack (emulators, Triton, functions) for all system tests."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack

TEST_PORT_BASE = os.environ.get("IMAGEN_TEST_PORT_BASE", "19000")


@pytest.fixture(scope="session")
def stack() -> Iterator[StackSettings]:
    os.environ["IMAGEN_PORT_BASE"] = TEST_PORT_BASE
    os.environ["IMAGEN_STACK_DIR"] = str(ROOT / ".stack-test")
    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    st = Stack(s)
    st.down(lambda _m: None)  # leftovers of an interrupted run
    st.up(lambda m: print(m, flush=True))
    try:
        yield s
    finally:
        st.down(lambda _m: None)


@pytest.fixture(scope="session")
def bucket(stack: StackSettings) -> Any:
    from google.cloud import storage  # type: ignore[attr-defined]

    return storage.Client(project=stack.project).bucket(stack.bucket)


@pytest.fixture(scope="session")
def jobs_col(stack: StackSettings) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=stack.project).collection("jobs")


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
