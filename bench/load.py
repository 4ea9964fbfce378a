"""Offered load on the local stack in steps, up to and past its knee, and the worker's cost per MP.

Each step uploads a mix of small images (mostly the fast models) to the bucket at a fixed rate
for a fixed time, as users do, then waits for every job to end. Per step: the rate offered and
achieved, latency from the upload's start to the job's `finished_at` (p50/p95/p99), failures,
and the oldest waiting message. The Pub/Sub emulator has no metrics API, so the oldest unacked
message is approximated by the oldest job still `queued`, sampled every few seconds (its age
from its upload); a job claimed by a worker and waiting inside Triton's queue is not counted.
A second measure is rebuilt afterwards from the documents: the oldest upload not yet claimed
by a worker at each sampling time (it includes the event's way to on_upload). Escalation stops
once p95 passes a bound (10x the first step's) or the backlog grows without bound.

Before the steps, jobs alone at ~0.25, 1 and 4 MP give the worker's seconds per MP by stage
(from the `timings` and `output.cpu_s` the worker records). CPU seconds by component (Triton,
workers, the other functions, the bridge, the emulators, this driver, everything else on the
machine) are read from /proc for each step.

`python -m bench.load` (`nox -s load`) prints the tables and writes docs/load.json, docs/load.png
and the generated blocks of docs/load.md. The stack gets its own ports (IMAGEN_PORT_BASE=19400)
and folder (.stack-load) unless the environment says otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.bench import cpu_name

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SAMPLES = ROOT / "samples"
PORT_BASE = "19400"
STACK_DIR = ".stack-load"

DEFAULT_STEPS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
SMALL = ((400, 300), (512, 384), (640, 480), (800, 600))  # 0.12 to 0.48 MP


@dataclass(frozen=True)
class Share:
    """One model's share of the uploads and the sizes it is sent at."""

    model: str
    weight: int
    sizes: tuple[tuple[int, int], ...]


# Mostly small images on the fast models; some enhance; a few upscale (the default, fidelity,
# whose tile is 192 px: one or two tiles at these sizes, ~1-2 s of this CPU each).
MIX = (
    Share("style_aged", 30, SMALL),
    Share("style_comic", 20, SMALL),
    Share("background_remove", 29, SMALL),
    Share("enhance", 15, SMALL[:3]),
    Share("upscale", 6, ((160, 120), (192, 144))),
)
MP_SIZES = {0.25: (576, 432), 1.0: (1152, 864), 4.0: (2304, 1728)}
MP_MODELS = ("style_aged", "enhance", "background_remove")
STAGES = ("download_s", "decode_s", "infer_s", "encode_s", "upload_s")


# -- images ------------------------------------------------------------------------------------
def sample_pool(sizes: Iterable[tuple[int, int]]) -> dict[tuple[int, int], list[bytes]]:
    """Every sample photo cropped and resized to each size, as JPEG."""
    from PIL import Image, ImageOps

    photos = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    pool: dict[tuple[int, int], list[bytes]] = {}
    for size in sorted(set(sizes)):
        pool[size] = []
        for im in photos:
            buf = io.BytesIO()
            ImageOps.fit(im, size, Image.Resampling.LANCZOS).save(buf, "JPEG", quality=88)
            pool[size].append(buf.getvalue())
    return pool


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile, nearest rank (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def _ts(value: Any) -> float | None:
    return float(value.timestamp()) if value is not None else None


# -- CPU by component -----------------------------------------------------------------------------
GROUPS = ("triton", "workers", "functions", "bridge", "emulators")


def group_of(name: str) -> str:
    """The component a stack process counts under."""
    if name == "triton" or name == "bridge":
        return name
    if name.startswith("fn-on_job-"):
        return "workers"
    if name.startswith("fn-"):
        return "functions"
    return "emulators"  # pubsub, firestore, gcs


@dataclass(frozen=True)
class CpuSnapshot:
    at: float  # monotonic
    groups: dict[str, float]  # CPU seconds so far, by component (each process group's)
    driver: float  # this process
    machine: float  # every core's busy seconds, all processes


def cpu_snapshot(running: dict[str, int]) -> CpuSnapshot:
    """CPU seconds so far of each component's process groups (each service is its own group:
    Triton's Python backend stubs count under Triton), this driver and the whole machine."""
    tick = os.sysconf("SC_CLK_TCK")
    owner = {pid: group_of(name) for name, pid in running.items()}
    groups = dict.fromkeys(GROUPS, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        group = owner.get(int(fields[2]))
        if group:  # utime, stime, cutime, cstime
            groups[group] += sum(int(x) for x in fields[11:15]) / tick
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    jiffies = [int(x) for x in cpu[:8]]
    busy = sum(jiffies) - jiffies[3] - jiffies[4]  # less idle and iowait
    times = os.times()
    return CpuSnapshot(time.monotonic(), groups, times.user + times.system, busy / tick)


def cpu_between(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    """CPU seconds spent between two snapshots, by component; `other` is the rest of the machine."""
    out = {g: b.groups[g] - a.groups[g] for g in GROUPS}
    out["driver"] = b.driver - a.driver
    out["machine"] = b.machine - a.machine
    out["other"] = max(0.0, out["machine"] - sum(out[g] for g in (*GROUPS, "driver")))
    out["wall"] = b.at - a.at
    return out


def triton_stats(port: int) -> dict[str, dict[str, float]]:
    """Per Triton model so far: requests, executions, seconds in its queue and computing."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/stats", timeout=10) as resp:
            data = json.load(resp)
    except (OSError, ValueError) as exc:  # a step without Triton's view, not a failed run
        print(f"  Triton's statistics unread: {exc}", flush=True)
        return {}
    out: dict[str, dict[str, float]] = {}
    for m in data.get("model_stats", []):
        stats, row = m.get("inference_stats", {}), out.setdefault(m["name"], dict.fromkeys(TRITON_KEYS, 0.0))
        row["requests"] += int(stats.get("success", {}).get("count", 0))
        row["executions"] += int(m.get("execution_count", 0))
        row["queue_s"] += int(stats.get("queue", {}).get("ns", 0)) / 1e9
        row["compute_s"] += (
            sum(
                int(stats.get(k, {}).get("ns", 0))
                for k in ("compute_input", "compute_infer", "compute_output")
            )
            / 1e9
        )
    return out


TRITON_KEYS = ("requests", "executions", "queue_s", "compute_s")


def triton_between(
    a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """What each Triton model did between two readings (models that did nothing left out)."""
    out = {}
    for name, row in b.items():
        delta = {k: round(row[k] - a.get(name, {}).get(k, 0.0), 3) for k in TRITON_KEYS}
        if delta["requests"]:
            out[name] = delta
    return out


# -- the pipeline, as a user sees it -----------------------------------------------------------
@dataclass
class Upload:
    job_id: str
    model: str
    size: tuple[int, int]
    at: float  # epoch seconds, the start of the upload


@dataclass
class Sample:
    at: float  # epoch
    queued: int
    running: int
    jobs: int
    oldest_queued_s: float | None


class Pipeline:
    """Uploads into the stack's bucket and reads the jobs collection."""

    def __init__(self, s: Any) -> None:
        self.s = s
        self.bucket = s.bucket_handle()
        self.store = s.job_store()
        self.col = self.store.col
        self.uploads: dict[str, Upload] = {}
        self.lock = threading.Lock()

    def put(self, name: str, model: str, size: tuple[int, int], data: bytes) -> Upload:
        from imagen.jobs.messages import job_id

        at = time.time()
        blob = self.bucket.blob(f"{model}/{name}")
        blob.upload_from_string(data, content_type="image/jpeg")
        up = Upload(job_id(self.s.bucket, blob.name, str(blob.generation)), model, size, at)
        with self.lock:
            self.uploads[up.job_id] = up
        return up

    def _count(self, status: str | None = None) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.col if status is None else self.col.where(filter=FieldFilter("status", "==", status))
        return int(query.count().get()[0][0].value)

    def sample(self) -> Sample:
        """The queue as the jobs collection shows it now (the emulator has no Pub/Sub metrics)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        now = time.time()
        oldest = None
        queued = self.col.where(filter=FieldFilter("status", "==", "queued"))
        for snap in queued.order_by("created_at").limit(1).stream():
            up = self.uploads.get(snap.id)
            created = _ts((snap.to_dict() or {}).get("created_at"))
            since = up.at if up else created
            oldest = now - since if since is not None else None
        return Sample(now, self._count("queued"), self._count("running"), self._count(), oldest)

    def documents(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for i in range(0, len(ids), 100):
            refs = [self.col.document(j) for j in ids[i : i + 100]]
            for snap in self.store.db.get_all(refs):
                if snap.exists:
                    out[snap.id] = snap.to_dict() or {}
        return out

    def one(self, name: str, model: str, size: tuple[int, int], data: bytes, timeout_s: float) -> dict:
        """One upload, waited for alone: its document once the job has ended."""
        up = self.put(name, model, size, data)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            doc = self.store.document(up.job_id)
            if doc and doc.get("status") in ("done", "failed"):
                return doc
            time.sleep(0.25)
        raise TimeoutError(f"{model}/{name} did not end in {timeout_s:.0f} s")


class Sampler:
    """Samples the jobs collection every `every_s` seconds in a thread until stopped."""

    def __init__(self, p: Pipeline, every_s: float) -> None:
        self.p, self.every_s = p, every_s
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.samples.append(self.p.sample())
            except Exception as exc:  # a missed sample is a gap, not the end of the run
                print(f"  sample failed: {exc}", flush=True)
            if self.stop.wait(self.every_s):
                return

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


# -- one step -----------------------------------------------------------------------------------
@dataclass
class Step:
    offered: float  # uploads/s asked
    seconds: float
    uploads: int = 0
    offered_actual: float = 0.0
    achieved: float = 0.0
    done: int = 0
    failed: int = 0
    unfinished: int = 0
    p50_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None
    wait_p50_s: float | None = None  # upload → first claim
    wait_p95_s: float | None = None
    run_p50_s: float | None = None  # first claim → finished
    run_p95_s: float | None = None
    oldest_queued_s: float | None = None  # max over the samples (the proxy)
    oldest_unclaimed_s: float | None = None  # max over the sampling times, rebuilt from documents
    in_system_at_end: int = 0  # uploaded and not finished when the uploads stopped
    drain_s: float = 0.0
    waits: int = 0  # deliveries turned away waiting for a service (Triton busy)
    retried: int = 0  # jobs with more than one attempt
    reasons: list[str] = field(default_factory=list)
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # window + drain
    triton: dict[str, dict[str, float]] = field(default_factory=dict)  # per Triton model, window + drain
    cores_window: dict[str, float] = field(default_factory=dict)  # cores in use while uploading
    samples: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = ""


def schedule(rate: float, seconds: float, rng: random.Random) -> list[tuple[str, tuple[int, int], int]]:
    """The step's uploads in order: model, size and which sample, drawn by the mix's weights."""
    n = max(1, round(rate * seconds))
    out = []
    for _ in range(n):
        share = rng.choices(MIX, weights=[s.weight for s in MIX])[0]
        out.append((share.model, rng.choice(share.sizes), rng.randrange(1 << 16)))
    return out


def offer(
    p: Pipeline, pool: dict[tuple[int, int], list[bytes]], rate: float, seconds: float, label: str, seed: int
) -> list[Upload]:
    """Uploads at a fixed rate (each started on its own schedule, not after the last one ended)."""
    plan = schedule(rate, seconds, random.Random(seed))
    start = time.monotonic()
    with ThreadPoolExecutor(16) as uploaders:
        futures = []
        for i, (model, size, pick) in enumerate(plan):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data = pool[size][pick % len(pool[size])]
            futures.append(uploaders.submit(p.put, f"load-{label}/{i:05d}.jpg", model, size, data))
        return [f.result() for f in futures]


def first_claim(doc: dict[str, Any]) -> float | None:
    for h in doc.get("history") or ():
        if h.get("status") == "running":
            return _ts(h.get("at"))
    return _ts(doc.get("started_at"))


def measure(step: Step, ups: list[Upload], docs: dict[str, dict[str, Any]], window_end: float) -> None:
    """The step's figures from its uploads and their documents."""
    step.uploads = len(ups)
    first, last = min(u.at for u in ups), max(u.at for u in ups)
    step.offered_actual = len(ups) / (last - first + 1 / step.offered)
    lat, wait, run, finishes = [], [], [], []
    per_model: dict[str, list[float]] = {}
    reasons: dict[str, int] = {}
    claims: list[tuple[float, float]] = []  # (upload, first claim or inf)
    for up in ups:
        doc = docs.get(up.job_id) or {}
        status = doc.get("status")
        claimed = first_claim(doc)
        claims.append((up.at, claimed if claimed is not None else float("inf")))
        step.waits += int(doc.get("waits") or 0)
        step.retried += int(doc.get("attempts") or 0) > 1
        if status not in ("done", "failed"):
            step.unfinished += 1
            continue
        end = _ts(doc.get("finished_at"))
        if status == "failed" or end is None:
            step.failed += 1
            reason = str(doc.get("reason", ""))[:120]
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        step.done += 1
        finishes.append(end)
        lat.append(end - up.at)
        per_model.setdefault(up.model, []).append(end - up.at)
        if claimed is not None:
            wait.append(claimed - up.at)
            run.append(end - claimed)
    step.reasons = [f"{n}x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])]
    if finishes:
        # Completions a second: the first 95% of them over the time they took from the first
        # upload (the last few are the mix's slowest models; one of them would set the figure).
        ordered = sorted(finishes)
        k = max(1, int(0.95 * len(ordered)))
        step.achieved = k / max(ordered[k - 1] - first, 1e-3)
    step.p50_s, step.p95_s, step.p99_s = pct(lat, 0.5), pct(lat, 0.95), pct(lat, 0.99)
    step.max_s = max(lat) if lat else None
    step.wait_p50_s, step.wait_p95_s = pct(wait, 0.5), pct(wait, 0.95)
    step.run_p50_s, step.run_p95_s = pct(run, 0.5), pct(run, 0.95)
    step.by_model = {
        m: {"jobs": len(v), "p50_s": pct(v, 0.5), "p95_s": pct(v, 0.95)} for m, v in sorted(per_model.items())
    }
    step.in_system_at_end = sum(1 for u in ups if u.at <= window_end) - sum(
        1 for f in finishes if f <= window_end
    )
    # The oldest upload not yet claimed at each sampling time (rebuilt; includes the event's path).
    oldest = [
        max((t - at for at, claimed in claims if at <= t < claimed), default=0.0)
        for t in (s["at"] for s in step.samples)
    ]
    step.oldest_unclaimed_s = max(oldest, default=None)
    queued = [s["oldest_queued_s"] for s in step.samples if s["oldest_queued_s"] is not None]
    step.oldest_queued_s = max(queued, default=0.0)


def run_step(
    p: Pipeline,
    stack: Any,
    pool: dict[tuple[int, int], list[bytes]],
    rate: float,
    args: argparse.Namespace,
    index: int,
) -> Step:
    step = Step(rate, args.step_s)
    label = f"{index:02d}-{rate:g}"
    print(f"\nstep {index + 1}: {rate:g} uploads/s for {args.step_s:.0f} s", flush=True)
    with Sampler(p, args.sample_s) as sampler:
        before, tri_before = cpu_snapshot(stack.running()), triton_stats(p.s.triton_port)
        ups = offer(p, pool, rate, args.step_s, label, seed=args.seed + index)
        window_end = time.time()
        at_end = cpu_snapshot(stack.running())
        latest = sampler.latest()
        print(
            f"  uploaded {len(ups)}; now queued {latest.queued if latest else '?'}, running "
            f"{latest.running if latest else '?'}",
            flush=True,
        )
        expected = len(p.uploads)
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.drain_s:
            s = sampler.latest()
            if s is not None and s.at > window_end and s.jobs >= expected and s.queued + s.running == 0:
                break
            time.sleep(args.sample_s / 2)
        step.drain_s = time.monotonic() - t0
        after, tri_after = cpu_snapshot(stack.running()), triton_stats(p.s.triton_port)
    step.samples = [asdict(s) for s in sampler.samples]
    ids = [u.job_id for u in ups]
    measure(step, ups, p.documents(ids), window_end)
    step.cpu = {k: round(v, 2) for k, v in cpu_between(before, after).items()}
    step.triton = triton_between(tri_before, tri_after)
    window = cpu_between(before, at_end)
    step.cores_window = {k: round(v / window["wall"], 2) for k, v in window.items() if k != "wall"}
    return step


def classify(steps: list[Step], knee_factor: float) -> int | None:
    """Marks each step ok or over; returns the index of the knee (the last step still ok)."""
    base = steps[0].p95_s or 0.0
    knee = None
    for i, st in enumerate(steps):
        keeps_up = st.achieved >= 0.85 * st.offered_actual and st.unfinished == 0
        fast = st.p95_s is not None and st.p95_s <= knee_factor * max(base, 0.5)
        st.verdict = "ok" if keeps_up and fast else "over"
        if st.verdict == "ok" and (knee is None or knee == i - 1):
            knee = i
    return knee


def stop_reason(steps: list[Step], stop_factor: float) -> str | None:
    """Why escalation stops after the last step, if it does."""
    st, base = steps[-1], steps[0].p95_s or 0.0
    if st.unfinished:
        return f"{st.unfinished} jobs still unfinished after the drain"
    if st.p95_s is not None and len(steps) > 1 and st.p95_s > stop_factor * max(base, 0.5):
        return f"p95 {st.p95_s:.1f} s is past {stop_factor:g}x the first step's ({base:.2f} s)"
    if st.achieved < 0.6 * st.offered_actual:
        return (
            f"achieved {st.achieved:.2f}/s of {st.offered_actual:.2f}/s offered: the backlog grew "
            f"by ~{st.offered_actual - st.achieved:.2f} jobs/s for as long as the uploads went on"
        )
    return None


# -- cost per megapixel -------------------------------------------------------------------------
def mp_rows(p: Pipeline, models: Iterable[str], repeats: int, timeout_s: float) -> list[dict[str, Any]]:
    """Each model alone at ~0.25, 1 and 4 MP: the worker's stages per MP (the fastest of `repeats`)."""
    from emulators.fullsize import phone_photo

    photos = {mp: phone_photo(w, h) for mp, (w, h) in MP_SIZES.items()}
    rows = []
    for model in models:
        p.one(f"mp/warm-{model}.jpg", model, MP_SIZES[0.25], photos[0.25], timeout_s)
        for mp, size in MP_SIZES.items():
            runs = []
            for r in range(repeats):
                t0 = time.time()
                doc = p.one(f"mp/{model}-{mp:g}-{r}.jpg", model, size, photos[mp], timeout_s)
                if doc.get("status") != "done":
                    raise RuntimeError(f"{model} at {mp:g} MP: {doc.get('reason')}")
                runs.append((doc, (_ts(doc.get("finished_at")) or t0) - t0))
            rows.append(mp_row(model, size, runs))
            print(mp_line(rows[-1]), flush=True)
    return rows


def mp_row(model: str, size: tuple[int, int], runs: list[tuple[dict[str, Any], float]]) -> dict[str, Any]:
    mp = size[0] * size[1] / 1e6

    # The fastest of the runs, whole: other load on the machine only ever adds time.
    doc, e2e = min(runs, key=lambda r: float(r[0]["timings"].get("total_s", 0.0)))
    wall = {k: float(doc["timings"].get(k, 0.0)) for k in (*STAGES, "total_s")}
    triton = float(doc["timings"].get("infer_wait_s", 0.0))
    cpu = {k: float(doc["output"]["cpu_s"].get(k, 0.0)) for k in STAGES}
    per_mp = {
        "download+upload": (wall["download_s"] + wall["upload_s"]) / mp,
        "decode": wall["decode_s"] / mp,
        "tiles+stitch (own)": (wall["infer_s"] - triton) / mp,
        "triton wait": triton / mp,
        "encode": wall["encode_s"] / mp,
        "job total": wall["total_s"] / mp,
        "worker cpu": sum(cpu.values()) / mp,
    }
    return {
        "model": model,
        "size": f"{size[0]}x{size[1]}",
        "mp": round(mp, 3),
        "runs": len(runs),
        "tiles": int(doc["output"].get("tiles", 0)),
        "e2e_s": round(e2e, 3),
        "job_s": round(wall["total_s"], 3),
        "outside_job_s": round(e2e - wall["total_s"], 3),  # event, queue, claim, done: per job
        "triton_wait_s": round(triton, 3),
        "wall_s": {k: round(v, 4) for k, v in wall.items()},
        "cpu_s": {k: round(v, 4) for k, v in cpu.items()},
        "s_per_mp": {k: round(v, 4) for k, v in per_mp.items()},
    }


MP_COLUMNS = ("decode", "tiles+stitch (own)", "triton wait", "encode", "download+upload", "worker cpu")


def mp_header() -> list[str]:
    cols = " | ".join(f"{c} s/MP" for c in MP_COLUMNS)
    return [
        f"| model | input | MP | tiles | upload→done s | job s | outside the job s | {cols} |",
        "|---" * (7 + len(MP_COLUMNS)) + "|",
    ]


def mp_line(r: dict[str, Any]) -> str:
    cells = " | ".join(f"{r['s_per_mp'][c]:.3f}" for c in MP_COLUMNS)
    return (
        f"| {r['model']} | {r['size']} | {r['mp']:.2f} | {r['tiles']} | {r['e2e_s']:.2f} | "
        f"{r['job_s']:.2f} | {r['outside_job_s']:.2f} | {cells} |"
    )


def growth(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model and stage: s/MP at the largest size over s/MP at the smallest (1: linear; well
    under 1: a fixed cost per job dominates; well over 1: superlinear). Stages under 20 ms a job
    at both sizes are left out (noise)."""
    out: dict[str, dict[str, float]] = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["mp"])
        small, large = mine[0], mine[-1]
        out[model] = {}
        for c in GROWTH_COLUMNS:
            a, b = small["s_per_mp"][c], large["s_per_mp"][c]
            if max(a * small["mp"], b * large["mp"]) >= 0.02 and a > 0:
                out[model][c] = round(b / a, 2)
    return out


GROWTH_COLUMNS = (*MP_COLUMNS[:5], "job total")


def growth_lines(rows: list[dict[str, Any]], ratios: dict[str, dict[str, float]]) -> list[str]:
    def cell(r: float | None) -> str:
        if r is None:
            return "<20 ms"
        return f"{r:.2f} " + ("linear" if 0.6 <= r <= 1.6 else ("fixed" if r < 0.6 else "superlinear"))

    lines = [
        "| model | " + " | ".join(GROWTH_COLUMNS) + " | outside the job s, smallest → largest |",
        "|---" * (len(GROWTH_COLUMNS) + 2) + "|",
    ]
    for model, per in ratios.items():
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["mp"])
        lines.append(
            f"| {model} | "
            + " | ".join(cell(per.get(c)) for c in GROWTH_COLUMNS)
            + f" | {mine[0]['outside_job_s']:.2f} → {mine[-1]['outside_job_s']:.2f} |"
        )
    return lines


# -- output -------------------------------------------------------------------------------------
def _f(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


STEP_HEADER = [
    "| offered /s | uploads | achieved /s | p50 s | p95 s | p99 s | max s | claim wait p95 s | run p50 s "
    "| oldest queued s | oldest unclaimed s | failed | stack cores | Triton | workers | emulators "
    "| other load cores | verdict |",
    "|---" * 18 + "|",
]


def step_line(st: Step) -> str:
    c = st.cores_window
    stack = sum(c.get(g, 0.0) for g in GROUPS)
    return (
        f"| {st.offered:g} | {st.uploads} | {st.achieved:.2f} | {_f(st.p50_s)} | {_f(st.p95_s)} | "
        f"{_f(st.p99_s)} | {_f(st.max_s)} | {_f(st.wait_p95_s)} | {_f(st.run_p50_s)} | "
        f"{_f(st.oldest_queued_s, 1)} | {_f(st.oldest_unclaimed_s, 1)} | {st.failed + st.unfinished} | "
        f"{stack:.2f} | {c.get('triton', 0):.2f} | {c.get('workers', 0):.2f} | {c.get('emulators', 0):.2f} | "
        f"{c.get('other', 0):.2f} | {st.verdict} |"
    )


def cost_lines(steps: list[Step]) -> list[str]:
    """CPU seconds per job by component, and Triton's own view (the step's window and drain)."""
    lines = [
        "| offered /s | jobs | Triton | workers | other functions | bridge | emulators | driver "
        "| total stack | Triton compute s/job | Triton queue s/job | longest Triton queue |",
        "|---" * 12 + "|",
    ]
    for st in steps:
        n = max(1, st.uploads)
        per = {k: st.cpu.get(k, 0.0) / n for k in (*GROUPS, "driver")}
        total = sum(per[g] for g in GROUPS)
        compute = sum(r["compute_s"] for r in st.triton.values()) / n
        queue = sum(r["queue_s"] for r in st.triton.values()) / n
        worst = max(st.triton.items(), key=lambda kv: kv[1]["queue_s"] / kv[1]["requests"], default=None)
        longest = f"{worst[0]} {worst[1]['queue_s'] / worst[1]['requests']:.2f} s/request" if worst else "—"
        lines.append(
            f"| {st.offered:g} | {st.uploads} | {per['triton']:.3f} | {per['workers']:.3f} | "
            f"{per['functions']:.3f} | {per['bridge']:.3f} | {per['emulators']:.3f} | {per['driver']:.3f} | "
            f"{total:.3f} | {compute:.2f} | {queue:.2f} | {longest} |"
        )
    return lines


def plot(steps: list[Step], knee: int | None, path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [st.offered for st in steps]
    fig, (lat, old, thr) = plt.subplots(3, 1, figsize=(8, 10), sharex=True)
    for key, label, style in (("p50_s", "p50", "o-"), ("p95_s", "p95", "s-"), ("p99_s", "p99", "^-")):
        ys = [getattr(st, key) for st in steps]
        lat.plot([a for a, y in zip(x, ys, strict=True) if y], [y for y in ys if y], style, label=label)
    lat.set_yscale("log")
    lat.set_ylabel("upload → done, s (log)")
    lat.set_title("imagen local stack: offered load against latency")
    old.plot(
        x,
        [st.oldest_queued_s or 0.01 for st in steps],
        "o-",
        label="oldest job `queued` (sampled; 0 at 0.01)",
    )
    old.plot(
        x,
        [st.oldest_unclaimed_s or 0.01 for st in steps],
        "s--",
        label="oldest upload not yet claimed (rebuilt)",
    )
    old.set_yscale("log")
    old.set_ylabel("oldest waiting, s (log)")
    thr.plot(x, x, ":", color="grey", label="offered")
    thr.plot(x, [st.achieved for st in steps], "o-", label="achieved completions")
    thr.set_ylabel("jobs/s")
    thr.set_xlabel("offered uploads/s")
    for ax in (lat, old, thr):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xscale("log", base=2)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{v:g}" for v in x])
        if knee is not None:
            ax.axvline(steps[knee].offered, color="red", ls="--", alpha=0.6)
            if knee + 1 < len(steps):
                ax.axvspan(steps[knee].offered, steps[-1].offered, color="red", alpha=0.06)
        ax.legend(loc="upper left", fontsize=8)
    if knee is not None:
        lat.annotate(
            f"knee ≈ {steps[knee].offered:g}/s",
            (steps[knee].offered, steps[knee].p95_s or 1),
            textcoords="offset points",
            xytext=(8, 10),
            color="red",
        )
    fig.text(0.01, 0.005, note, fontsize=7, color="dimgrey")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write_docs(results: dict[str, Any], tables: dict[str, list[str]]) -> None:
    """docs/load.json, and the generated blocks of docs/load.md where its markers are."""
    (DOCS / "load.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    page = DOCS / "load.md"
    if not page.exists():
        return
    from tools.docgen import replace

    text = page.read_text()
    for name, lines in tables.items():
        try:
            text = replace(text, name, "\n".join(lines))
        except LookupError:
            print(f"docs/load.md has no block {name}; left as it is", flush=True)
    page.write_text(text)


def _steps(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def report(results: dict[str, Any], write: bool) -> None:
    """Print the tables; unless told not to, write docs/load.json, docs/load.png and docs/load.md's
    generated blocks."""
    steps = [Step(**d) for d in results["steps"]]
    knee, mp, stopped = results["knee_index"], results["mp"], results["stopped"]
    run_line = textwrap.wrap(
        f"One run, {results['machine']['date']}: {results['note']}. Stack start "
        f"{results['stack_start_s']:.0f} s, whole session {results['duration_s'] / 60:.1f} min. "
        f"Escalation stopped: {stopped or 'all steps ran'}.",
        100,
    )
    tables = {
        "load-run": run_line,
        "load-steps": STEP_HEADER + [step_line(st) for st in steps],
        "load-cost": cost_lines(steps),
        "load-mp": mp_header() + [mp_line(r) for r in mp] if mp else ["(not run)"],
        "load-growth": growth_lines(mp, results["mp_growth"]) if mp else ["(not run)"],
    }
    print("\n" + "\n".join(run_line))
    print("\n" + "\n".join(tables["load-steps"]))
    print("\nCPU seconds per job by component\n" + "\n".join(tables["load-cost"]))
    if knee is not None:
        nxt = steps[knee + 1].offered if knee + 1 < len(steps) else None
        print(
            f"\nknee: {steps[knee].offered:g} uploads/s keeps up" + (f"; {nxt:g}/s does not" if nxt else "")
        )
    if mp:
        print("\n" + "\n".join(tables["load-mp"]))
        print("\ns/MP at the largest size over s/MP at the smallest\n" + "\n".join(tables["load-growth"]))
    for st in steps:
        if st.reasons:
            print(f"failed at {st.offered:g}/s: " + "; ".join(st.reasons[:5]))
    if write and steps:
        write_docs(results, tables)
        plot(steps, knee, DOCS / "load.png", f"{results['note']}; {results['machine']['date']}")
        print(f"\nwritten: {DOCS / 'load.json'}, {DOCS / 'load.png'}, {DOCS / 'load.md'} (generated blocks)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stack, measure, stop it: the results as docs/load.json holds them."""
    os.environ.setdefault("IMAGEN_PORT_BASE", PORT_BASE)
    os.environ.setdefault("IMAGEN_STACK_DIR", str(ROOT / STACK_DIR))
    from emulators.settings import StackSettings
    from emulators.stack import Stack

    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine()}
    print(f"load average before the stack: {results['machine']['loadavg_at_start']}", flush=True)
    with Stack(s).session(lambda m: print(m, flush=True)) as stack:
        results["stack_start_s"] = round(time.monotonic() - started, 1)
        p = Pipeline(s)
        pool = sample_pool([size for share in MIX for size in share.sizes])

        def warm(sh: Share) -> dict[str, Any]:
            return p.one(f"warm/{sh.model}.jpg", sh.model, sh.sizes[0], pool[sh.sizes[0]][0], 300)

        with ThreadPoolExecutor(len(MIX)) as warming:  # every model once: Triton's first calls are slow
            list(warming.map(warm, MIX))
        mp: list[dict[str, Any]] = []
        models = [m for m in args.mp_models.split(",") if m]
        if models:
            print("\nworker cost per megapixel (each job alone)\n" + "\n".join(mp_header()), flush=True)
            mp = mp_rows(p, models, args.mp_repeats, 600)
        steps: list[Step] = []
        stopped = None
        for i, rate in enumerate(args.steps):
            if (time.monotonic() - started) / 60 > args.max_minutes:
                stopped = f"the time budget ({args.max_minutes:g} min) is spent"
                break
            steps.append(run_step(p, stack, pool, rate, args, i))
            classify(steps, args.knee_factor)
            print("\n".join(STEP_HEADER[:1] + [step_line(steps[-1])]), flush=True)
            stopped = stop_reason(steps, args.stop_factor)
            if stopped:
                break
    knee = classify(steps, args.knee_factor)
    other = [st.cores_window.get("other", 0.0) for st in steps]
    m = results["machine"]
    results.update(
        settings={
            "steps": args.steps,
            "step_s": args.step_s,
            "sample_s": args.sample_s,
            "knee_factor": args.knee_factor,
            "stop_factor": args.stop_factor,
            "mix": [asdict(sh) for sh in MIX],
            "port_base": s.port_base,
        },
        steps=[asdict(st) for st in steps],
        knee_index=knee,
        knee_offered=steps[knee].offered if knee is not None else None,
        stopped=stopped,
        mp=mp,
        mp_growth=growth(mp) if mp else {},
        duration_s=round(time.monotonic() - started, 1),
        note=(
            f"{m['cpu']}, {m['cores']} cores; other load on the machine "
            f"{min(other, default=0):.2f}-{max(other, default=0):.2f} cores during the steps"
        ),
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=_steps, default=list(DEFAULT_STEPS), help="uploads/s, comma-separated"
    )
    parser.add_argument("--step-s", type=float, default=60.0, help="seconds of uploads per step")
    parser.add_argument("--drain-s", type=float, default=300.0, help="the most a step waits for its jobs")
    parser.add_argument("--sample-s", type=float, default=3.0, help="seconds between queue samples")
    parser.add_argument(
        "--knee-factor", type=float, default=3.0, help="p95 over the first step's: past the knee"
    )
    parser.add_argument("--stop-factor", type=float, default=10.0, help="p95 over the first step's: stop")
    parser.add_argument("--max-minutes", type=float, default=16.0, help="no new step after this")
    parser.add_argument(
        "--mp-models", default=",".join(MP_MODELS), help="models of the MP table ('' for none)"
    )
    parser.add_argument("--mp-repeats", type=int, default=2, help="runs of each MP case (the fastest counts)")
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--render", action="store_true", help="no stack: redo the docs from docs/load.json")
    args = parser.parse_args()
    if args.render:  # growth is derived: recounted, so a change to its rule shows without a run
        results = json.loads((DOCS / "load.json").read_text())
        results["mp_growth"] = growth(results["mp"])
    else:
        results = run(args)
    report(results, write=not args.no_write)
    print(f"session: {results['duration_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
