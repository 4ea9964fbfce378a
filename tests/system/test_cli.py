"""The `imagen` command against the running local stack, as a user runs it (a separate process,
with workers: --wait and retry end to end; the rest is in tests/integration/test_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from emulators.settings import ROOT

from .conftest import upload, wait_finished

SAMPLE = ROOT / "samples" / "cat.jpg"


def imagen(*args: str, port_base: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    env.update(IMAGEN_PORT_BASE=port_base or os.environ["IMAGEN_PORT_BASE"])
    return subprocess.run(
        [sys.executable, "-m", "imagen_cli", "--local", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_submit_wait_downloads_results(stack: Any, tmp_path: Path, unique: str) -> None:
    second = tmp_path / "coffee.jpg"
    second.write_bytes((ROOT / "samples" / "coffee.jpg").read_bytes())
    out = tmp_path / "out"
    run = imagen(
        "submit",
        "upscale",
        str(SAMPLE),
        str(second),
        "--prefix",
        f"cli-{unique}",
        "--wait",
        "--out",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("submitted gs://") == 2
    assert "100% done" in run.stdout
    result = out / "upscale" / f"cli-{unique}" / "cat.jpg.jpg"
    assert Image.open(result).size == (1600, 1064)
    assert (out / "upscale" / f"cli-{unique}" / "coffee.jpg.jpg").exists()


def test_retry_runs_the_job_again_on_a_worker(bucket: Any, jobs_col: Any, unique: str) -> None:
    jid = upload(bucket, f"enhance/cli-{unique}/empty.jpg", b"")
    assert wait_finished(jobs_col, jid)["status"] == "failed"
    retried = imagen("retry", jid)
    assert retried.returncode == 0, retried.stderr
    job = wait_finished(jobs_col, jid)  # the file is still empty: it fails again, once more
    assert job["status"] == "failed" and job["attempts"] == 2
    assert any(h.get("retry") for h in job["history"])
