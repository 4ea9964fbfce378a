"""on_job: claim a job message and run it through Triton to done or failed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import completion, events, imaging, logs, tracing
from .config import Config
from .errors import BadInput
from .events import JobMessage
from .inference import InferStats
from .jobs import Claim
from .models import MODELS
from .services import Services


@contextmanager
def _lease(cfg: Config, svc: Services, claim: Claim) -> Iterator[None]:
    """Renew the claim's lease every lease/3 seconds while the job runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(max(1.0, cfg.lease_s / 3)):
            try:
                svc.jobs.renew(claim, cfg.lease_s)
            except Exception as exc:  # a missed beat only shortens the lease
                logs.lease_renewal_failed(claim.job_id, str(exc))

    thread = threading.Thread(target=beat, name=f"lease-{claim.job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def run_job(cfg: Config, svc: Services, msg: JobMessage, claim: Claim) -> None:
    """Download, decode, infer, encode, upload; marks the job done. Raises BadInput/Transient."""
    spec = MODELS[msg.model]
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # this thread's CPU seconds per stage
    t0 = last = time.perf_counter()
    last_cpu = time.thread_time()

    def lap(stage: str) -> None:
        nonlocal last, last_cpu
        now, now_cpu = time.perf_counter(), time.thread_time()
        timings[stage] = round(now - last, 4)
        cpu[stage] = round(now_cpu - last_cpu, 4)
        last, last_cpu = now, now_cpu

    data = svc.storage.download(msg, cfg.max_input_bytes)
    lap("download_s")
    decoded = imaging.decode(data, cfg.max_input_bytes, cfg.max_input_pixels)
    lap("decode_s")
    stats = InferStats()
    last_report = [time.monotonic()]  # the first report after a second: short jobs write none

    def report(fraction: float) -> None:  # at most one progress write a second
        if fraction < 1.0 and time.monotonic() - last_report[0] >= 1.0:
            last_report[0] = time.monotonic()
            svc.jobs.progress(msg.job_id, fraction)

    pixels = svc.inference.run(spec, decoded.pixels, stats, report)
    lap("infer_s")
    encoded = imaging.encode(pixels, spec.result_format)
    lap("encode_s")
    name = cfg.names.result_name(msg.model, msg.name)
    written = svc.storage.write_result(msg, name, encoded, spec.content_type, stats.model_version)
    lap("upload_s")
    timings["total_s"] = round(time.perf_counter() - t0, 4)
    timings["infer_wait_s"] = round(stats.wait_s, 4)
    h, w = decoded.pixels.shape[:2]
    output = {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "input_width": w,
        "input_height": h,
        "bytes": len(encoded),
        "format": spec.result_format,
        "tiles": stats.tiles,
        "requests": stats.requests,
        "source_format": decoded.source_format,
        "source_frames": decoded.frames,
        "result_reused": not written.wrote,
        "cpu_s": cpu,
    }
    if svc.jobs.done(claim, written.uri, stats.model_version, timings, output):
        logs.job_done(msg.job_id, msg.model, written.uri, timings)
    else:
        logs.job_skipped(msg.job_id, "finished by another attempt")


def handle_job(cfg: Config, svc: Services, event_type: str, data: Any) -> None:
    """Claim and run one job message. Transient faults raise so Pub/Sub redelivers."""
    message = data.get("message") if isinstance(data, dict) else None
    parent = (message or {}).get("attributes") or {}
    with tracing.span("imagen.on_job", parent, {"imagen.model": cfg.model_name or ""}) as current:
        if isinstance(message, dict):
            current.set_attribute("imagen.job_id", str(parent.get("job_id", "")))
        _job(cfg, svc, event_type, data)


def _job(cfg: Config, svc: Services, event_type: str, data: Any) -> None:
    try:
        msg, _ = events.parse_job_message(event_type, data)
    except events.EventError as exc:
        logs.bad_message(str(exc))  # acknowledged: redelivery could never succeed
        return
    if cfg.model_name and msg.model != cfg.model_name:
        logs.bad_message(f"job {msg.job_id} is for {msg.model}, this worker runs {cfg.model_name}")
        return
    claim = svc.jobs.claim(msg.job_id, cfg.lease_s)
    if not isinstance(claim, Claim):
        logs.job_skipped(msg.job_id, claim)
        completion.announce(cfg, svc, msg.job_id)  # heals an event lost to a crash
        return
    logs.job_started(msg.job_id, msg.model, claim.attempt)
    try:
        with _lease(cfg, svc, claim):
            run_job(cfg, svc, msg, claim)
    except BadInput as exc:
        svc.jobs.failed(claim, str(exc))
        logs.job_failed(msg.job_id, msg.model, str(exc))
        completion.announce(cfg, svc, msg.job_id)
        return
    except Exception as exc:  # Transient, or a fault we did not foresee: let Pub/Sub retry
        error = f"{type(exc).__name__}: {exc}"
        logs.job_retrying(msg.job_id, msg.model, error)
        try:
            svc.jobs.release(claim, error)
        except Exception as release_exc:  # the lease runs out instead
            logs.lease_renewal_failed(msg.job_id, f"release failed: {release_exc}")
        raise
    completion.announce(cfg, svc, msg.job_id)
