"""Burst on the local stack: N uploads at once across all models, then the tally.

uploads, jobs, done, failed, results, lost. Lost (an upload that never ended as a job `done`
or `failed`) must be 0; the exit status says whether it was.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from imagen.events import RESULT_MARKER, job_id
from imagen.jobs import DONE, is_terminal
from imagen.models import MODELS

from .demo import SAMPLES
from .settings import StackSettings
from .stack import Stack


def variants(n: int) -> list[tuple[str, bytes]]:
    """n distinct small photos: crops of the samples at shifting offsets, round-robin over models."""
    photos = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    out = []
    for i in range(n):
        im = photos[i % len(photos)]
        x, y = (i * 13) % (im.width - 160), (i * 7) % (im.height - 120)
        buf = io.BytesIO()
        im.crop((x, y, x + 160, y + 120)).save(buf, "JPEG", quality=88)
        out.append((list(MODELS)[i % len(MODELS)], buf.getvalue()))
    return out


def run(s: StackSettings, count: int, timeout_s: float) -> int:
    bucket = s.bucket_handle()
    run_id = time.strftime("%H%M%S")
    images = variants(count)

    def put(item: tuple[int, tuple[str, bytes]]) -> str:
        i, (model, data) = item
        blob = bucket.blob(f"{model}/soak-{run_id}/{i:04d}.jpg")
        blob.upload_from_string(data, content_type="image/jpeg")
        return job_id(s.bucket, blob.name, str(blob.generation))

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(put, enumerate(images)))
    print(f"uploaded {len(ids)} images in {time.monotonic() - started:.1f}s", flush=True)

    docs = s.job_store().wait(ids, timeout_s, until=is_terminal, every_s=1.0)
    final: dict[str, dict[str, Any]] = {k: d for k, d in docs.items() if is_terminal(d)}
    elapsed = time.monotonic() - started
    seen = set(docs)
    results = [
        b for b in bucket.list_blobs(prefix="results/") if (b.metadata or {}).get(RESULT_MARKER) in set(ids)
    ]
    done = sum(1 for d in final.values() if d["status"] == DONE)
    failed = len(final) - done
    lost = len(ids) - len(final)
    print(f"\n{'uploads':>8} {'jobs':>6} {'done':>6} {'failed':>7} {'results':>8} {'lost':>5} {'seconds':>8}")
    print(f"{len(ids):>8} {len(seen):>6} {done:>6} {failed:>7} {len(results):>8} {lost:>5} {elapsed:>8.1f}")
    print(f"throughput: {len(final) / elapsed:.2f} images/s")
    for d in final.values():
        if d["status"] != DONE:
            print(f"failed: {d['object']}: {d.get('reason')}")
    ok = lost == 0 and failed == 0 and len(results) == done
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    with Stack(s).session():
        return run(s, args.count, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
