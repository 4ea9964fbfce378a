"""`nox -s cli`: the `imagen` command installed alone, run against the local stack.

Installs the CLI the README's way (`pip install . ./cli` from the repository root) into a fresh
venv of its own, checks that venv has none of the functions' packages, starts the local stack
(from this process's venv, which has the functions' runtime) and runs every subcommand with
`--local` the way a user would: each command and its output printed, and any that ends other
than expected fails the session.

The reconciler is not started: it would create the jobs that `imagen backfill` is shown creating.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Sequence
from pathlib import Path

from imagen.core.local import LOCAL_BUCKET, LOCAL_PROJECT
from imagen.core.models import MODELS

from .settings import ROOT, StackSettings
from .stack import Stack

PORT_BASE = int(os.environ.get("IMAGEN_CLI_PORT_BASE", "19600"))  # clear of up (18000) and the tests
MODELS_USED = ("style_aged", "style_comic")  # fast on a CPU
SERVICES = ("pubsub", "firestore", "gcs", "triton", "fn-on_upload", "fn-on_dead_letter", "bridge") + tuple(
    f"fn-on_job-{m}" for m in MODELS_USED
)


def functions_only() -> tuple[str, ...]:
    """What the CLI must install without: the third-party packages its import-linter contract
    ("The CLI installs alone", pyproject.toml) forbids."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (cli,) = (c for c in contracts if c.get("source_modules") == ["imagen_cli"])
    return tuple(m for m in cli["forbidden_modules"] if not m.startswith("imagen"))


FUNCTIONS_ONLY = functions_only()
JOB = re.compile(r"job ([0-9a-f]{32})")


class SessionError(RuntimeError):
    """A command ended other than expected."""


def step(line: str) -> None:
    print(f"\n=== {line}", flush=True)


def install_alone(venv: Path) -> Path:
    """A fresh venv with the CLI installed the README's way; its `imagen`."""
    step(f"python -m venv {venv} && pip install . ./cli   (in {ROOT})")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", ".", "./cli"], cwd=ROOT, check=True)
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    found = subprocess.run(
        [str(python), "-c", probe, *FUNCTIONS_ONLY], capture_output=True, text=True, check=True
    ).stdout.split()
    if found:
        raise SessionError(f"installing the CLI brought in the functions' packages: {found}")
    listed = subprocess.run([str(python), "-m", "pip", "list"], capture_output=True, text=True, check=True)
    print(listed.stdout, flush=True)
    return venv / "bin" / "imagen"


class Imagen:
    """Runs `imagen ARGS` from the CLI's own venv, with --local unless told otherwise."""

    def __init__(self, exe: Path, port_base: int, cwd: Path) -> None:
        self.exe, self.cwd = exe, cwd
        # Nothing of this process's environment points it at the stack: --local and the port
        # base alone must (the CLI's own defaults, from imagen.core.local).
        drop = ("_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "IMAGEN_BUCKET", "CLOUDSDK_", "PYTHONPATH")
        self.env = {k: v for k, v in os.environ.items() if not any(d in k for d in drop)}
        self.env["IMAGEN_PORT_BASE"] = str(port_base)
        self.env["COLUMNS"] = "160"

    def __call__(self, *args: str, expect: int = 0, local: bool = True) -> str:
        argv = [str(self.exe), *(["--local"] if local else []), *args]
        print(f"\n$ imagen {' '.join(argv[1:])}", flush=True)
        run = subprocess.run(argv, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=600)
        print(run.stdout.rstrip() + ("\n" + run.stderr.rstrip() if run.stderr.strip() else ""), flush=True)
        if run.returncode != expect:
            raise SessionError(f"imagen {' '.join(args)} exited {run.returncode}, expected {expect}")
        return run.stdout + run.stderr


def expect(text: str, *needles: str) -> None:
    flat = " ".join(text.split())  # a table may wrap a long cell
    missing = [n for n in needles if n not in text and n not in flat]
    if missing:
        raise SessionError(f"the output lacks {missing}")


def job_ids(text: str) -> list[str]:
    return JOB.findall(text)


def forget_jobs(s: StackSettings, ids: Sequence[str]) -> None:
    """Delete job documents, as if the uploads' storage events had been lost."""
    from google.cloud import firestore

    collection = firestore.Client(project=s.project).collection(s.names.jobs_collection)
    for jid in ids:
        collection.document(jid).delete()


def run_commands(imagen: Imagen, s: StackSettings, work: Path) -> None:
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    cat, coffee = ROOT / "samples" / "cat.jpg", ROOT / "samples" / "coffee.jpg"
    notes = work / "notes.jpg"
    notes.write_text("meeting notes\nbring coffee\n")  # named like a photo; not an image

    expect(imagen("--help", local=False), "submit", "status", "jobs", "retry", "backfill")
    out = imagen(
        "submit", "style_aged", str(cat), "--prefix", prefix, "-o", "format=webp", "-o", "quality=80"
    )
    [webp_job] = job_ids(out)
    imagen("submit", "style_aged", str(cat), "-o", "scale=2", expect=2)  # refused before any upload

    results = work / "results"
    out = imagen(
        "submit",
        "style_comic",
        str(coffee),
        "--prefix",
        prefix,
        "--wait",
        "--out",
        str(results),
        "--timeout",
        "300",
    )
    [comic_job] = job_ids(out)
    result = results / "style_comic" / prefix / "coffee.jpg.jpg"
    if not result.is_file():
        raise SessionError(f"submit --wait did not download {result}")
    print(f"(downloaded {result}: {result.stat().st_size} bytes)")

    out = imagen(
        "submit", "style_aged", str(notes), "--prefix", prefix, "--wait", "--timeout", "120", expect=1
    )
    [failed_job] = job_ids(out)
    expect(out, "not an image")

    expect(imagen("status", webp_job), webp_job, "imagen-format=webp")
    expect(imagen("status", f"gs://{s.bucket}/style_comic/{prefix}/coffee.jpg"), comic_job, "done")
    expect(imagen("jobs", "--limit", "10"), webp_job, comic_job, failed_job)
    expect(imagen("jobs", "--status", "failed", "--limit", "10"), failed_job, "not an image")
    expect(imagen("jobs", "--status", "done", "--model", "style_comic"), comic_job)

    expect(imagen("retry", failed_job), f"job {failed_job} queued again")
    imagen("retry", comic_job, expect=2)  # only a failed job can be retried
    _wait_failed(imagen, failed_job)

    # Objects whose jobs were lost: the failed one (no result: backfill creates its job again)
    # and the finished one (its result is there: left alone).
    forget_jobs(s, [failed_job, comic_job])
    for model, created, processed in (("style_aged", 1, 0), ("style_comic", 0, 1)):
        out = imagen("backfill", model, "--prefix", prefix, "--dry-run")
        expect(out, f"would create {created} jobs")
        if processed:
            expect(out, f"{processed} already processed")
    expect(imagen("backfill", "style_aged", "--prefix", prefix), "created 1 jobs")
    expect(imagen("backfill", "style_aged", "--prefix", prefix), "created 0 jobs")
    expect(imagen("status", failed_job), failed_job)
    imagen("backfill", "sharpen", expect=2)
    print(f"\nevery command ran as expected (models {', '.join(MODELS_USED)} of {len(MODELS)})")


def _wait_failed(imagen: Imagen, job: str, timeout_s: float = 120) -> None:
    """The retried job runs again (and fails again): wait for it before the backfill."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = imagen("jobs", "--status", "failed", "--limit", "10")
        if job in out:
            return
        time.sleep(2)
    raise SessionError(f"the retried job {job} did not end")


def main() -> int:
    # The stack's processes (the bridge) read their settings from the environment. Project and
    # bucket are the CLI's --local defaults: the command is given nothing but the port base.
    os.environ.update(
        IMAGEN_PORT_BASE=str(PORT_BASE),
        IMAGEN_STACK_DIR=str(ROOT / ".cache" / "stack-cli"),
        IMAGEN_PROJECT=LOCAL_PROJECT,
        IMAGEN_BUCKET=LOCAL_BUCKET,
    )
    s = StackSettings.from_env()
    stack = Stack(s)
    stack.down(lambda m: print(m, flush=True))  # one an earlier run left behind, by its PID files
    work = Path(tempfile.mkdtemp(prefix="imagen-cli-"))
    try:
        exe = install_alone(work / "venv")
        imagen = Imagen(exe, PORT_BASE, work)
        expect(imagen("jobs", expect=2), "the local stack is not running")  # a message, no traceback
        step(f"starting the local stack on port base {PORT_BASE}: {', '.join(SERVICES)}")
        os.environ.update(s.client_env())  # this process's own clients (forget_jobs)
        with stack.session(lambda m: print(m, flush=True), only=SERVICES):
            run_commands(imagen, s, work)
        print("stack stopped")
    except SessionError as exc:
        print(f"\nnox -s cli: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
