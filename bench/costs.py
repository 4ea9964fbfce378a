"""What one job costs each service, counted on the local stack where the code makes the calls.

Every function call logs one `usage` line (imagen.core.usage): Firestore documents read and
written, Pub/Sub messages published, Cloud Storage class A and B operations, signBlob calls, and
the handler thread's CPU seconds (inference runs in Triton, so this is the function's own work).
This uploads each model at two sizes through the bucket (the storage event path), waits for each
job to finish and its event to go out, and adds the lines up per job. Long jobs show what a job
writes while it runs: enhance at 1600x1200 runs about a minute on this CPU, which at the stack's
1/5 time scale (lease 24 s, progress at most every 2 s) is a five-minute job in production. The
reconciler's passes are per deployment, not per job: reported per pass.

Then `imagen backfill`'s rate: objects with no job (their events held back: on_upload and the
reconciler stopped) backfilled with 1 and with 16 workers, in objects a second.

`python -m bench.costs` (nox -s costs) prints the tables and writes docs/costs.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack
from imagen.cloud.clients import Cloud
from imagen.core import usage
from imagen.core.models import PERCEPTUAL
from imagen.jobs.messages import job_id
from imagen.jobs.model import is_finished
from imagen_cli.backfill import Scope, backfill

DOCS = ROOT / "docs"
# (label, model, options, size): two sizes of every model, and the long job.
CASES: list[tuple[str, str, dict[str, str], tuple[int, int]]] = [
    *(
        (f"{model} {w}x{h}", model, {}, (w, h))
        for model in ("style_aged", "style_comic", "enhance", "background_remove")
        for w, h in ((512, 512), (1600, 1200))
    ),
    ("upscale 512x512", "upscale", {}, (512, 512)),
    (f"upscale {PERCEPTUAL} 1024x768", "upscale", {"imagen-upscale": PERCEPTUAL}, (1024, 768)),
]
COLUMNS = ("seconds", *usage.OPS, "cpu_s")


def photo(size: tuple[int, int]) -> bytes:
    im = Image.open(ROOT / "samples" / "cat.jpg").convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def usage_lines(logs: Path) -> list[dict[str, Any]]:
    """Every `usage` line the stack's functions have written, with the function's log name."""
    out = []
    for path in sorted(logs.glob("fn-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"event": "usage"' in line:
                entry = json.loads(line)
                entry["log"] = path.stem
                out.append(entry)
    return out


def per_job(lines: list[dict[str, Any]], jid: str) -> dict[str, Any]:
    """The job's operations summed over every function call that worked for it."""
    total: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for entry in lines:
        if entry.get("job_id") != jid:
            continue
        calls[entry["function"]] += 1
        for op, n in entry["ops"].items():
            total[op] += n
        total["cpu_s"] += entry["cpu_s"]
    return {
        **{op: int(total[op]) for op in usage.OPS},
        "cpu_s": round(total["cpu_s"], 3),
        "calls": dict(calls),
    }


def run_case(
    s: StackSettings,
    bucket: Any,
    jobs: Any,
    label: str,
    model: str,
    opts: dict[str, str],
    size: tuple[int, int],
    run: str,
    timeout_s: float,
) -> dict[str, Any]:
    name = f"{model}/costs/{run}/{label.split(':')[0].replace(' ', '_')}.jpg"
    blob = bucket.blob(name)
    blob.metadata = opts or None
    blob.upload_from_string(photo(size), content_type="image/jpeg")
    jid = job_id(bucket.name, name, str(blob.generation))
    deadline = time.monotonic() + timeout_s
    doc: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        doc = jobs.document(jid)
        if is_finished(doc):
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"{label}: job {jid} did not finish in {timeout_s:.0f} s")
    assert doc is not None
    found: dict[str, Any] = {}
    for _ in range(40):  # the worker's line follows its last write by a moment
        found = per_job(usage_lines(s.logs), jid)
        if "on_job" in found["calls"] and "on_upload" in found["calls"]:
            break
        time.sleep(0.25)
    started, finished = doc.get("started_at"), doc.get("finished_at")
    ran = (finished - started).total_seconds() if started and finished else None
    return {
        "case": label,
        "model": model,
        "megapixels": round(size[0] * size[1] / 1e6, 2),
        "status": doc.get("status"),
        "seconds": round(ran, 1) if ran is not None else None,
        **found,
    }


def backfill_rate(s: StackSettings, stack: Stack, bucket: Any, count: int, run: str) -> list[dict[str, Any]]:
    """Objects a second `imagen backfill` takes on, with 1 and with 16 workers (emulators: each
    round trip is a millisecond or two here, 10-30 ms to Google Cloud)."""
    for name in ("fn-on_upload", "fn-on_reconcile"):  # their events wait: the objects have no job
        stack.stop_one(name)
    tiny = photo((64, 48))
    cloud = Cloud.connect(s.names)
    out = []
    for workers in (1, 16):
        prefix = f"backfill-{run}-{workers}/"
        for i in range(count):
            bucket.blob(f"style_aged/{prefix}{i:05d}.jpg").upload_from_string(tiny, content_type="image/jpeg")
        scope = Scope(s.names, s.bucket, cloud.storage, cloud, workers=workers)
        started = time.perf_counter()
        report = backfill(scope, "style_aged", prefix)
        took = time.perf_counter() - started
        out.append(
            {
                "workers": workers,
                "objects": count,
                "created": report.created,
                "seconds": round(took, 2),
                "per_s": round(report.created / took, 1),
            }
        )
        print(f"backfill, {workers} workers: {out[-1]}", flush=True)
    return out


def reconciler_passes(lines: list[dict[str, Any]]) -> dict[str, Any]:
    passes = [e for e in lines if e["function"] == "on_reconcile"]
    if not passes:
        return {"passes": 0}
    mean = {op: round(sum(e["ops"][op] for e in passes) / len(passes), 1) for op in usage.OPS}
    return {
        "passes": len(passes),
        "per_pass": mean,
        "cpu_s": round(sum(e["cpu_s"] for e in passes) / len(passes), 3),
    }


def table(rows: list[dict[str, Any]]) -> str:
    heads = ("case", "MP", *COLUMNS)
    short = {
        "firestore_reads": "fs reads",
        "firestore_writes": "fs writes",
        "pubsub_publishes": "publishes",
        "storage_class_a": "gcs A",
        "storage_class_b": "gcs B",
        "signatures": "signs",
        "cpu_s": "CPU-s",
    }
    out = ["| " + " | ".join(short.get(h, h) for h in heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        out.append(
            "| " + " | ".join(str(r.get("megapixels") if h == "MP" else r.get(h)) for h in heads) + " |"
        )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--label", default="", help="a name for this run in docs/costs.json (e.g. before)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--only", nargs="*", default=None, help="cases whose label starts with these")
    parser.add_argument("--backfill", type=int, default=400, help="objects per backfill run (0: none)")
    args = parser.parse_args()
    os.environ.setdefault("IMAGEN_PORT_BASE", "19500")
    os.environ.setdefault("IMAGEN_STACK_DIR", str(ROOT / ".stack-costs"))
    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    run = time.strftime("%H%M%S")
    cases = [c for c in CASES if not args.only or any(c[0].startswith(o) for o in args.only)]
    stack = Stack(s)
    with stack.session(lambda m: print(m, flush=True)):
        bucket, jobs = s.bucket_handle(), s.job_store()
        rows = []
        for label, model, opts, size in cases:
            rows.append(run_case(s, bucket, jobs, label, model, opts, size, run, args.timeout))
            print(f"{label}: {rows[-1]}", flush=True)
        reconcile = reconciler_passes(usage_lines(s.logs))
        rates = backfill_rate(s, stack, bucket, args.backfill, run) if args.backfill else []
    print("\n" + table(rows))
    print(f"\nreconciler, per pass: {reconcile}")
    path = DOCS / "costs.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    entry = saved.setdefault(args.label or run, {})  # a run of some parts keeps the others
    entry.update({"jobs": rows, "reconciler": reconcile} if rows else {})
    entry.update({"backfill": rates} if rates else {})
    path.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
