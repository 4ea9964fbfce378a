"""Burst on the local stack: N uploads at once across all models, then the tally.

uploads, jobs, done, failed, results, lost, foreign. Lost (an upload that never ended as a job
`done` or `failed`) and foreign (a job whose result object belongs to another source) must be 0;
the exit status says whether they were. With --faults, during the burst: a worker SIGKILLed
twice, the bridge (every puller) SIGKILLed and restarted once, and Triton stopped for longer than a
message's whole retry window, then started again.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from imagen.core.models import MODELS
from imagen.core.names import gs_uri
from imagen.jobs.messages import RESULT_MARKER, job_id
from imagen.jobs.model import JobStatus, is_terminal
from imagen_cli import watch

from .bridge import backoff_s
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


def inject_faults(stack: Stack, stop: threading.Event) -> None:
    """The faults of --faults, spaced through the burst; each one printed as it happens."""

    def kill_and_restart(name: str) -> None:
        pid = stack.pid_of(name)
        if pid:
            os.killpg(pid, signal.SIGKILL)
        stack.stop_one(name)  # reaps it, clears its PID file
        stack.start(stack.service(name))

    # Triton stays down longer than a message's whole retry window (every delivery's backoff,
    # then the dead letter): the jobs that meet it wait, their attempts unspent.
    window = sum(backoff_s(stack.s, a) for a in range(1, stack.s.max_delivery_attempts + 1))
    steps = [
        (5, "SIGKILL fn-on_job-enhance", lambda: kill_and_restart("fn-on_job-enhance")),
        (10, "SIGKILL fn-on_job-style_comic", lambda: kill_and_restart("fn-on_job-style_comic")),
        (15, "SIGKILL the bridge (every puller)", lambda: kill_and_restart("bridge")),
        (
            20,
            f"stop triton (down for {window + 15} s, the retry window is {window} s)",
            lambda: stack.stop_one("triton"),
        ),
        (35 + window, "start triton", lambda: stack.start(stack.service("triton"))),
    ]
    started = time.monotonic()
    for at, what, fault in steps:
        if stop.wait(max(0.0, at - (time.monotonic() - started))):
            return
        fault()
        print(f"fault at {time.monotonic() - started:5.1f}s: {what}", flush=True)


def run(s: StackSettings, count: int, timeout_s: float, faults: Stack | None = None) -> int:
    bucket = s.bucket_handle()
    run_id = time.strftime("%H%M%S")
    images = variants(count)

    def put(item: tuple[int, tuple[str, bytes]]) -> str:
        i, (model, data) = item
        blob = bucket.blob(f"{model}/soak-{run_id}/{i:04d}.jpg")
        blob.upload_from_string(data, content_type="image/jpeg")
        return job_id(s.bucket, blob.name, str(blob.generation))

    started = time.monotonic()
    stop = threading.Event()
    injector = threading.Thread(target=inject_faults, args=(faults, stop), daemon=True) if faults else None
    if injector:
        injector.start()
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(put, enumerate(images)))
    print(f"uploaded {len(ids)} images in {time.monotonic() - started:.1f}s", flush=True)

    docs = watch.wait(s.job_store(), ids, timeout_s, until=is_terminal, every_s=1.0)
    stop.set()
    if injector:
        injector.join()
    final: dict[str, dict[str, Any]] = {k: d for k, d in docs.items() if is_terminal(d)}
    elapsed = time.monotonic() - started
    seen = set(docs)
    results = [
        b for b in bucket.list_blobs(prefix="results/") if (b.metadata or {}).get(RESULT_MARKER) in set(ids)
    ]
    done = sum(1 for d in final.values() if d["status"] == JobStatus.DONE)
    failed = len(final) - done
    lost = len(ids) - len(final)
    owners = {d["result_uri"]: d["source_uri"] for d in final.values() if d.get("result_uri")}
    foreign = sum(
        1
        for b in results
        if owners.get(gs_uri(b.bucket.name, b.name), (b.metadata or {}).get("imagen-source"))
        != (b.metadata or {}).get("imagen-source")
    )
    attempts = sum(int(d.get("attempts", 0)) for d in final.values())
    waited = [d for d in final.values() if d.get("waits")]
    print(
        f"\n{'uploads':>8} {'jobs':>6} {'done':>6} {'failed':>7} {'results':>8} {'lost':>5} {'foreign':>8} "
        f"{'attempts':>9} {'seconds':>8}"
    )
    print(
        f"{len(ids):>8} {len(seen):>6} {done:>6} {failed:>7} {len(results):>8} {lost:>5} {foreign:>8} "
        f"{attempts:>9} {elapsed:>8.1f}"
    )
    print(f"throughput: {len(final) / elapsed:.2f} images/s")
    if waited:
        waits = sorted(int(d["waits"]) for d in waited)
        print(
            f"waited for a service: {len(waited)} jobs, {sum(waits)} deliveries turned away "
            f"(per job: median {waits[len(waits) // 2]}, max {waits[-1]}); "
            f"attempts of those jobs: max {max(int(d.get('attempts', 0)) for d in waited)}"
        )
    for d in final.values():
        if d["status"] != JobStatus.DONE:
            print(f"failed: {d['object']}: {d.get('reason')}")
    ok = lost == 0 and foreign == 0 and failed == 0 and len(results) == done
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--faults", action="store_true", help="inject faults during the burst")
    args = parser.parse_args()
    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    with Stack(s).session() as stack:
        return run(s, args.count, args.timeout, stack if args.faults else None)


if __name__ == "__main__":
    sys.exit(main())
