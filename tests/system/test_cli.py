"""The `imagen` command against the running local stack, as a user runs it (a separate process,
with workers: --wait end to end here; retry end to end in tests/system/test_events.py; the rest
is in tests/integration/test_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from emulators.settings import ROOT

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


def test_a_failed_jobs_reason_is_in_the_list(stack: Any, tmp_path: Path, unique: str) -> None:
    """submit --wait says why a job failed; `imagen jobs --status failed` lists it with that reason."""
    notes = tmp_path / "notes.jpg"
    notes.write_text("meeting notes\nbring coffee\n")
    run = imagen(
        "submit", "style_aged", str(notes), "--prefix", f"cli-{unique}", "--wait", "--timeout", "120"
    )
    assert run.returncode == 1 and "not an image: the file looks like text" in run.stdout, run.stdout
    job_id = run.stdout.split(" job ", 1)[1].split()[0]
    listed = imagen("jobs", "--status", "failed", "--model", "style_aged", "--limit", "50")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("│") for line in listed.stdout.splitlines() if line.startswith("│")]
    reasons = " ".join(" ".join(cells[-2].strip() for cells in rows).split())  # the last column, unwrapped
    assert job_id in listed.stdout and "not an image: the file looks like text" in reasons
