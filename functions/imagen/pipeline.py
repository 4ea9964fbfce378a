"""What each function does with its event: create and publish a job; run a job to its end."""

from __future__ import annotations

import posixpath
import time
from typing import Any

from google.api_core import exceptions as gexc

from . import clients, events, imaging, logs
from .config import Config
from .errors import BadInput
from .events import JobMessage
from .inference import InferStats
from .jobs import Claim
from .models import MODELS


def handle_upload(cfg: Config, event_type: str, data: Any) -> str | None:
    """Create the job for a finalized upload and publish it; returns the job id, if any."""
    try:
        upload = events.parse_upload(event_type, data)
    except events.EventError as exc:
        logs.bad_message(str(exc))  # acknowledged: redelivery could never succeed
        return None
    model, reason = events.route(upload, cfg.result_prefix)
    if model is None:
        logs.upload_ignored(upload.name, reason)
        return None
    msg = JobMessage(
        events.job_id(upload.bucket, upload.name, upload.generation),
        model,
        upload.bucket,
        upload.name,
        upload.generation,
    )
    existing = clients.jobs().create(msg, upload.uri, upload.size)
    if existing is None:
        logs.job_created(msg.job_id, model, upload.name, upload.generation)
    else:
        logs.job_exists(msg.job_id, existing)
        if existing != "queued":
            return msg.job_id
    # Publish for new and still-queued jobs: a crash between create and publish is healed
    # by the storage event's redelivery; workers ignore a second message for the same job.
    topic = clients.publisher().topic_path(cfg.project, cfg.topic(model))
    clients.publisher().publish(topic, msg.encode(), job_id=msg.job_id, model=model).result(timeout=60)
    return msg.job_id


def result_name(cfg: Config, msg: JobMessage) -> str:
    """results/<model>/<path under the model prefix>, with the extension of the result format."""
    rest = msg.name.split("/", 1)[1]
    stem, _ = posixpath.splitext(rest)
    ext = ".png" if MODELS[msg.model].result_format == "PNG" else ".jpg"
    return f"{cfg.result_prefix}{msg.model}/{stem or rest}{ext}"


def _download(msg: JobMessage, cfg: Config) -> bytes:
    blob = clients.gcs().bucket(msg.bucket).blob(msg.name, generation=int(msg.generation))
    try:
        blob.reload()
    except gexc.NotFound as exc:
        raise BadInput(f"gs://{msg.bucket}/{msg.name}#{msg.generation} no longer exists") from exc
    if blob.size is not None and blob.size > cfg.max_input_bytes:
        raise BadInput(f"the file is {blob.size} bytes, over the limit of {cfg.max_input_bytes} bytes")
    data: bytes = blob.download_as_bytes()
    return data


def _upload(cfg: Config, msg: JobMessage, name: str, data: bytes, version: str) -> str:
    blob = clients.gcs().bucket(msg.bucket).blob(name)
    blob.metadata = {
        events.RESULT_MARKER: msg.job_id,
        "imagen-source": f"gs://{msg.bucket}/{msg.name}",
        "imagen-source-generation": msg.generation,
        "imagen-model": msg.model,
        "imagen-model-version": version,
    }
    fmt = MODELS[msg.model].result_format
    blob.upload_from_string(data, content_type="image/png" if fmt == "PNG" else "image/jpeg")
    return f"gs://{msg.bucket}/{name}"


def run_job(cfg: Config, msg: JobMessage, claim: Claim) -> None:
    """Download, decode, infer, encode, upload; marks the job done. Raises BadInput/Transient."""
    spec = MODELS[msg.model]
    timings: dict[str, float] = {}
    t0 = last = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal last
        now = time.perf_counter()
        timings[stage] = round(now - last, 4)
        last = now

    data = _download(msg, cfg)
    lap("download_s")
    decoded = imaging.decode(data, cfg.max_input_bytes, cfg.max_input_pixels)
    lap("decode_s")
    stats_obj = InferStats()
    pixels = clients.triton().run(spec, decoded.pixels, stats_obj)
    lap("infer_s")
    encoded = imaging.encode(pixels, spec.result_format)
    lap("encode_s")
    uri = _upload(cfg, msg, result_name(cfg, msg), encoded, stats_obj.model_version)
    lap("upload_s")
    timings["total_s"] = round(time.perf_counter() - t0, 4)
    timings["infer_wait_s"] = round(stats_obj.wait_s, 4)
    h, w = decoded.pixels.shape[:2]
    output = {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "input_width": w,
        "input_height": h,
        "bytes": len(encoded),
        "format": spec.result_format,
        "tiles": stats_obj.tiles,
        "requests": stats_obj.requests,
        "source_format": decoded.source_format,
    }
    clients.jobs().done(claim, uri, stats_obj.model_version, timings, output)
    logs.job_done(msg.job_id, msg.model, uri, timings)


def handle_job(cfg: Config, event_type: str, data: Any) -> None:
    """Claim and run one job message. Transient faults raise so Pub/Sub redelivers."""
    try:
        msg, _attempt = events.parse_job_message(event_type, data)
    except events.EventError as exc:
        logs.bad_message(str(exc))  # acknowledged: redelivery could never succeed
        return
    if cfg.model_name and msg.model != cfg.model_name:
        logs.bad_message(f"job {msg.job_id} is for {msg.model}, this worker runs {cfg.model_name}")
        return
    claim = clients.jobs().claim(msg.job_id, cfg.lease_s)
    if not isinstance(claim, Claim):
        logs.job_skipped(msg.job_id, claim)
        return
    logs.job_started(msg.job_id, msg.model, claim.attempt)
    try:
        run_job(cfg, msg, claim)
    except BadInput as exc:
        clients.jobs().failed(claim, str(exc))
        logs.job_failed(msg.job_id, msg.model, str(exc))
    except Exception as exc:  # Transient, or a fault we did not foresee: let Pub/Sub retry
        clients.jobs().release(claim, f"{type(exc).__name__}: {exc}")
        logs.job_retrying(msg.job_id, msg.model, f"{type(exc).__name__}: {exc}")
        raise


def handle_dead_letter(cfg: Config, event_type: str, data: Any) -> None:
    """A job message that ran out of delivery attempts: mark the job failed, with its last error."""
    try:
        msg, attempt = events.parse_job_message(event_type, data)
    except events.EventError as exc:
        logs.bad_message(str(exc))
        return
    job = clients.jobs().get(msg.job_id) or {}
    last = job.get("last_error") or "no error was recorded"
    reason = f"gave up after {job.get('attempts', 0)} attempts; last error: {last}"
    if clients.jobs().give_up(msg.job_id, reason):
        logs.job_failed(msg.job_id, msg.model, reason)
    else:
        logs.job_skipped(msg.job_id, str(job.get("status", "missing")))
