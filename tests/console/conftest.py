"""The console tier: the local stack (port base 19800), `imagen console` started as a user starts
it, and a real headless Chromium (Debian's `chromium`, driven by Playwright) on its pages.

`python3 -m nox -s console` installs chromium with apt-get when it is missing; pass
`-- --screenshots docs` to save each page's screenshot there (docs/console_*.png).
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack
from imagen.core.local import LOCAL_BUCKET, LOCAL_PROJECT
from imagen.jobs.messages import job_id

PORT_BASE = os.environ.get("IMAGEN_CONSOLE_PORT_BASE", "19800")
CONSOLE_PORT = int(os.environ.get("IMAGEN_CONSOLE_PORT", "19799"))  # below the stack's ports
MODELS_USED = ("style_aged", "style_comic", "background_remove")  # quick on a CPU
SERVICES = ("pubsub", "firestore", "gcs", "triton", "fn-on_upload", "fn-on_dead_letter", "bridge") + tuple(
    f"fn-on_job-{m}" for m in MODELS_USED
)
SAMPLE = ROOT / "samples" / "cat.jpg"
VIEWPORT = {"width": 1400, "height": 900}
EVIL = "evil.example"  # the browser resolves it to 127.0.0.1, as a rebound DNS name would


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--screenshots", default="", help="save each page's screenshot in this folder")


@pytest.fixture(scope="session")
def stack() -> Iterator[StackSettings]:
    os.environ.update(
        IMAGEN_PORT_BASE=PORT_BASE,
        IMAGEN_STACK_DIR=str(ROOT / ".stack-console"),
        IMAGEN_PROJECT=LOCAL_PROJECT,
        IMAGEN_BUCKET=LOCAL_BUCKET,
    )
    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    with Stack(s).session(lambda m: print(m, flush=True), only=SERVICES):
        yield s


@dataclass
class Running:
    """`imagen console` as started: its URL (with the token), and its log lines."""

    url: str
    port: int
    token: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cookie(self) -> str:
        return f"imagen_console_{self.port}={self.token}"

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request as a client that sets its own headers (Host, Origin, Cookie)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, path, skip_host="Host" in (headers or {}))
            for key, value in (headers or {}).items():
                conn.putheader(key, value)
            conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, {"Cookie": self.cookie})

    def refusals(self) -> list[str]:
        """The console_refused log lines so far."""
        return [line for line in self.log.read_text().splitlines() if '"console_refused"' in line]


@pytest.fixture(scope="session")
def console(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`imagen --local console`, given nothing but the port base (as a user's shell would)."""
    drop = ("_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "IMAGEN_BUCKET", "CLOUDSDK_", "TRITON_URL")
    env = {k: v for k, v in os.environ.items() if not any(d in k for d in drop)}
    env["IMAGEN_PORT_BASE"] = PORT_BASE
    log = tmp_path_factory.mktemp("console") / "console.log"
    argv = [
        sys.executable,
        "-m",
        "imagen_cli",
        "--local",
        "console",
        "--port",
        str(CONSOLE_PORT),
        "--no-browser",
    ]
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    try:
        url = _printed_url(proc, timeout_s=60)
        port = int(url.split(":")[2].split("/")[0])
        yield Running(url, port, url.split("token=", 1)[1], proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _printed_url(proc: subprocess.Popen[str], timeout_s: float) -> str:
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if "open http" in line and not found:
                found.append(line.split("open ", 1)[1].strip())

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"imagen console did not print its URL (exit {proc.poll()})")
        time.sleep(0.1)
    return found[0]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: run `python3 -m nox -s console` (it installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-dev-shm-usage", f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, console: Running) -> Iterator[Any]:
    """A fresh tab that opened the printed URL (its token now in the cookie); no page errors."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(30_000)
    tab.goto(console.url)
    yield tab
    context.close()
    assert not errors, f"errors on the page: {errors}"


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], None]:
    """Save a page's screenshot as docs/console_NAME.png when --screenshots is given."""
    folder = str(request.config.getoption("--screenshots"))

    def save(tab: Any, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(Path(folder) / f"console_{name}.png"), full_page=True)

    return save


@pytest.fixture(scope="session")
def bucket(stack: StackSettings) -> Any:
    return stack.bucket_handle()


@pytest.fixture(scope="session")
def jobs_col(stack: StackSettings) -> Any:
    return stack.job_store().col


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


def upload(bucket: Any, name: str, data: bytes, content_type: str = "image/jpeg", **metadata: str) -> str:
    """Write an object straight to the bucket (another way in); the job id it starts."""
    blob = bucket.blob(name)
    blob.metadata = metadata or None
    blob.upload_from_string(data, content_type=content_type)
    return job_id(bucket.name, name, str(blob.generation))


def wait_until(check: Callable[[], Any], timeout_s: float = 120, every_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s}s")
