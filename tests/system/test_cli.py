"""The `imagen` command against the running local stack, as a user runs it."""

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
    result = out / "upscale" / f"cli-{unique}" / "cat.jpg"
    assert Image.open(result).size == (1600, 1064)
    assert (out / "upscale" / f"cli-{unique}" / "coffee.jpg").exists()


def test_status_jobs_and_retry(bucket: Any, jobs_col: Any, unique: str) -> None:
    name = f"enhance/cli-{unique}/empty.jpg"
    jid = upload(bucket, name, b"")
    assert wait_finished(jobs_col, jid)["status"] == "failed"

    by_id = imagen("status", jid)
    assert by_id.returncode == 0 and "failed" in by_id.stdout and "empty" in by_id.stdout
    by_object = imagen("status", f"gs://{bucket.name}/{name}")
    assert by_object.returncode == 0 and jid in by_object.stdout

    listing = imagen("jobs", "--status", "failed", "--limit", "50")
    assert listing.returncode == 0 and jid in listing.stdout

    retried = imagen("retry", jid)
    assert retried.returncode == 0, retried.stderr
    job = wait_finished(jobs_col, jid)  # the file is still empty: it fails again, once more
    assert job["status"] == "failed" and job["attempts"] == 2
    assert any(h.get("retry") for h in job["history"])

    done_job = upload(bucket, f"style_aged/cli-{unique}/ok.jpg", SAMPLE.read_bytes())
    wait_finished(jobs_col, done_job)
    refused = imagen("retry", done_job)
    assert refused.returncode == 2 and "only failed jobs can be retried" in refused.stderr


def test_clear_messages_when_the_stack_is_down_or_the_bucket_missing(stack: Any) -> None:
    down = imagen("jobs", port_base="19500")
    assert down.returncode == 2
    assert "the local stack is not running" in down.stderr and "nox -s up" in down.stderr
    missing = imagen("--bucket", "no-such-bucket", "submit", "upscale", str(SAMPLE))
    assert missing.returncode == 2
    assert "bucket gs://no-such-bucket does not exist" in missing.stderr
