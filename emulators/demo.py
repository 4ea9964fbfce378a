"""The main job on the local stack: every sample image through every model, one row per job.

Starts the stack, uploads samples/*.jpg under each model prefix, waits for every job to end,
prints a table, saves the results under out/demo/, stops the stack. Exit 0 only if all `done`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagen.core.models import MODELS
from imagen.core.names import object_name
from imagen.jobs.messages import job_id
from imagen.jobs.model import is_terminal
from imagen_cli import watch

from .settings import ROOT, StackSettings
from .stack import Stack

SAMPLES = ROOT / "samples"
OUT = ROOT / "out" / "demo"
TIMEOUT_S = float(os.environ.get("IMAGEN_DEMO_TIMEOUT_S", "600"))


@dataclass
class Submitted:
    model: str
    source: Path
    object_name: str
    job_id: str


def submit_all(s: StackSettings) -> list[Submitted]:
    bucket = s.bucket_handle()
    out = []
    for model in MODELS:
        for path in sorted(SAMPLES.glob("*.jpg")):
            name = f"{model}/{path.name}"
            blob = bucket.blob(name)
            blob.upload_from_filename(str(path), content_type="image/jpeg")
            out.append(Submitted(model, path, name, job_id(s.bucket, name, str(blob.generation))))
    return out


def wait_for(s: StackSettings, jobs: list[Submitted]) -> dict[str, dict[str, Any]]:
    return watch.wait(s.job_store(), [j.job_id for j in jobs], TIMEOUT_S, until=is_terminal, every_s=0.5)


def save_results(s: StackSettings, docs: dict[str, dict[str, Any]]) -> None:
    bucket = s.bucket_handle()
    for doc in docs.values():
        uri = doc.get("result_uri")
        if not uri:
            continue
        name = object_name(uri)
        dest = OUT / name.split("/", 1)[1]
        dest.parent.mkdir(parents=True, exist_ok=True)
        bucket.blob(name).download_to_filename(str(dest))


def report(jobs: list[Submitted], docs: dict[str, dict[str, Any]]) -> bool:
    header = (
        f"{'model':18} {'input':15} {'output':44} {'in size':>9} {'out size':>10} {'status':8} {'seconds':>7}"
    )
    print(header)
    print("-" * len(header))
    all_done = True
    for j in jobs:
        doc = docs.get(j.job_id, {})
        status = doc.get("status", "missing")
        all_done &= status == "done"
        out = doc.get("output", {})
        in_size = f"{out.get('input_width', '?')}x{out.get('input_height', '?')}"
        out_size = f"{out.get('width', '?')}x{out.get('height', '?')}" if out else "-"
        seconds = "-"
        if doc.get("finished_at") and doc.get("created_at"):
            seconds = f"{(doc['finished_at'] - doc['created_at']).total_seconds():.2f}"
        uri = doc.get("result_uri")
        target = object_name(uri) if uri else str(doc.get("reason", ""))
        print(
            f"{j.model:18} {j.source.name:15} {target[:44]:44} {in_size:>9} {out_size:>10} "
            f"{status:8} {seconds:>7}"
        )
    return all_done


def main() -> int:
    s = StackSettings.from_env()
    for key, value in s.client_env().items():
        os.environ[key] = value
    started = time.monotonic()
    with Stack(s).session():
        print(f"stack up in {time.monotonic() - started:.1f}s\n", flush=True)
        t0 = time.monotonic()
        jobs = submit_all(s)
        docs = wait_for(s, jobs)
        elapsed = time.monotonic() - t0
        ok = report(jobs, docs)
        save_results(s, docs)
        done = sum(1 for d in docs.values() if d.get("status") == "done")
        print(
            f"\n{done}/{len(jobs)} jobs done in {elapsed:.1f}s "
            f"({len(jobs) / elapsed:.2f} images/s); results saved under {OUT}"
        )
    print("stack stopped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
