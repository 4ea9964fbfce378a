"""Full-size photos on the local stack under production's real memory budget.

An 8000x6000 phone-like JPEG through enhance, style_comic, style_aged and background_remove and
a 4000x3000 one through upscale, all at once, each worker capped at production's instance
memory (RLIMIT_DATA) with production's budget per job. Prints each job's status, time and the
peak RSS of its worker process (reset when the stack is up), and its time plan (planned from the
header with the local stack's TILE_SECONDS, for a worker's share of the CPU). Exit status 0 when
all are done.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from imagen.jobs.messages import job_id
from imagen.jobs.model import JobStatus, is_terminal
from imagen_cli import watch

from .settings import StackSettings
from .stack import Stack

CASES = {
    "enhance": (8000, 6000),
    "style_comic": (8000, 6000),
    "style_aged": (8000, 6000),
    "background_remove": (8000, 6000),
    "upscale": (4000, 3000),
}


def phone_photo(width: int, height: int, quality: int = 90) -> bytes:
    """A phone-like JPEG: smooth gradients and shapes with sensor-like noise."""
    rng = np.random.default_rng(width * 7 + height)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), np.uint8)
    for c, (a, b) in enumerate(((200, 40), (60, 150), (120, 90))):
        channel = a * x + b * y + 20 * np.sin(9 * x + 5 * y + c)
        channel += rng.normal(0, 6, (height, width)).astype(np.float32)
        img[:, :, c] = np.clip(channel, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _worker_pids(stack: Stack, model: str) -> list[int]:
    """The functions-framework process of a model and its gunicorn worker."""
    pid = stack.pid_of(f"fn-on_job-{model}")
    if pid is None:
        return []
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [pid, *kids]


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    photos = {size: phone_photo(*size) for size in set(CASES.values())}
    with Stack(s).session() as stack:
        cfg = s.worker_config()
        print(
            f"workers: {cfg.worker_memory_mb} MiB instances (the worker process under RLIMIT_DATA), "
            f"{cfg.worker_concurrency} jobs at once, "
            f"budget {cfg.job_budget_bytes >> 20} MiB per job",
            flush=True,
        )
        for model in CASES:
            for pid in _worker_pids(stack, model):
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS := now
        bucket = s.bucket_handle()
        run = time.strftime("%H%M%S")

        def send(model: str) -> str:
            blob = bucket.blob(f"{model}/fullsize-{run}/photo-{CASES[model][0]}x{CASES[model][1]}.jpg")
            blob.upload_from_string(photos[CASES[model]], content_type="image/jpeg")
            return job_id(s.bucket, blob.name, str(blob.generation))

        started = time.monotonic()
        with ThreadPoolExecutor(len(CASES)) as pool:
            ids = dict(zip(CASES, pool.map(send, CASES), strict=True))
        docs = watch.wait(s.job_store(), list(ids.values()), args.timeout, until=is_terminal, every_s=2.0)
        wall = time.monotonic() - started
        print(
            "\n| model | input | status | job s | planned s | written | peak RSS MiB (framework + worker) "
            "| planned MiB |"
        )
        print("|---|---|---|---|---|---|---|---|")
        ok = True
        for model, jid in ids.items():
            doc = docs.get(jid) or {}
            out = doc.get("output") or {}
            rss = [_status_kb(p, "VmHWM") >> 10 for p in _worker_pids(stack, model)]
            ok &= doc.get("status") == JobStatus.DONE
            w, h = CASES[model]
            print(
                f"| {model} | {w}x{h} | {doc.get('status', 'not finished')} {doc.get('reason', '')} | "
                f"{(doc.get('timings') or {}).get('total_s', 0):.0f} | "
                f"{(out.get('time_plan') or {}).get('total_s', 0):.0f} | "
                f"{out.get('width', '—')}x{out.get('height', '—')} | {' + '.join(map(str, rss))} | "
                f"{out.get('memory_need_bytes', 0) >> 20} |"
            )
        print(f"\nall {len(CASES)} at once: {wall:.0f} s wall; {'all done' if ok else 'NOT all done'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
