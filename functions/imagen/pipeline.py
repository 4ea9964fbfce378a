"""What each function does with its event: create and publish a job; run a job to its end."""

from __future__ import annotations

import hashlib
import posixpath
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from google.api_core import exceptions as gexc

from . import clients, completion, events, imaging, logs, tracing
from .config import Config
from .errors import BadInput, Transient
from .events import JobMessage
from .inference import InferStats
from .jobs import Claim
from .models import MODELS


def handle_upload(cfg: Config, event_type: str, data: Any) -> str | None:
    """Create the job for a finalized upload and publish it; returns the job id, if any."""
    with tracing.span("imagen.on_upload", attributes={"imagen.event_type": event_type}):
        return _upload(cfg, event_type, data)


def _upload(cfg: Config, event_type: str, data: Any) -> str | None:
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
    attrs = {"job_id": msg.job_id, "model": model, **tracing.inject()}
    clients.publisher().publish(topic, msg.encode(), **attrs).result(timeout=60)
    return msg.job_id


MAX_OBJECT_NAME_BYTES = 1024


def result_name(cfg: Config, msg: JobMessage) -> str:
    """results/<model>/<path under the model prefix>, with the extension of the result format.

    '.' and '..' segments become '_' so no consumer that maps names to paths can escape its
    folder; a name over GCS's 1024-byte limit is shortened and made unique with a hash.
    """
    rest = msg.name.split("/", 1)[1]
    segments = ["_" if seg in ("", ".", "..") else seg for seg in rest.split("/")]
    stem, _ = posixpath.splitext("/".join(segments))
    ext = ".png" if MODELS[msg.model].result_format == "PNG" else ".jpg"
    name = f"{cfg.result_prefix}{msg.model}/{stem or 'image'}{ext}"
    if len(name.encode()) > MAX_OBJECT_NAME_BYTES:
        digest = hashlib.sha256(msg.name.encode()).hexdigest()[:16]
        room = MAX_OBJECT_NAME_BYTES - len(f"{cfg.result_prefix}{msg.model}/-{digest}{ext}".encode())
        short = stem.encode()[:room].decode(errors="ignore")
        name = f"{cfg.result_prefix}{msg.model}/{short}-{digest}{ext}"
    return name


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


def _write_result(msg: JobMessage, name: str, data: bytes, version: str) -> tuple[str, bool]:
    """Write the result once; returns its URI and whether this call wrote it.

    A result already written for this job (an earlier attempt died before marking the job
    done) is reused, not written again. A result from a newer generation of the same source
    is never overwritten by an older one.
    """
    bucket = clients.gcs().bucket(msg.bucket)
    uri = f"gs://{msg.bucket}/{name}"
    existing = bucket.get_blob(name)
    precondition = 0
    if existing is not None:
        meta = existing.metadata or {}
        if meta.get(events.RESULT_MARKER) == msg.job_id:
            return uri, False
        newer = meta.get("imagen-source") == f"gs://{msg.bucket}/{msg.name}" and int(
            meta.get("imagen-source-generation", "0")
        ) > int(msg.generation)
        if newer:
            raise BadInput(f"superseded: {uri} already holds the result of a newer upload of this object")
        precondition = int(existing.generation)
    blob = bucket.blob(name)
    blob.metadata = {
        events.RESULT_MARKER: msg.job_id,
        "imagen-source": f"gs://{msg.bucket}/{msg.name}",
        "imagen-source-generation": msg.generation,
        "imagen-model": msg.model,
        "imagen-model-version": version,
    }
    fmt = MODELS[msg.model].result_format
    try:
        blob.upload_from_string(
            data, content_type="image/png" if fmt == "PNG" else "image/jpeg", if_generation_match=precondition
        )
    except gexc.PreconditionFailed as exc:
        raise Transient(f"{uri} changed while this job wrote it; retrying") from exc
    logs.result_written(msg.job_id, uri, int(blob.generation or 0), len(data))
    return uri, True


@contextmanager
def _lease(cfg: Config, claim: Claim) -> Iterator[None]:
    """Renew the claim's lease every lease/3 seconds while the job runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(max(1.0, cfg.lease_s / 3)):
            try:
                clients.jobs().renew(claim, cfg.lease_s)
            except Exception as exc:  # a missed beat only shortens the lease
                logs.lease_renewal_failed(claim.job_id, str(exc))

    thread = threading.Thread(target=beat, name=f"lease-{claim.job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def run_job(cfg: Config, msg: JobMessage, claim: Claim) -> None:
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

    data = _download(msg, cfg)
    lap("download_s")
    decoded = imaging.decode(data, cfg.max_input_bytes, cfg.max_input_pixels)
    lap("decode_s")
    stats = InferStats()
    last_report = [time.monotonic()]  # the first report after a second: short jobs write none

    def report(fraction: float) -> None:  # at most one progress write a second
        if fraction < 1.0 and time.monotonic() - last_report[0] >= 1.0:
            last_report[0] = time.monotonic()
            clients.jobs().progress(msg.job_id, fraction)

    pixels = clients.triton().run(spec, decoded.pixels, stats, report)
    lap("infer_s")
    encoded = imaging.encode(pixels, spec.result_format)
    lap("encode_s")
    uri, wrote = _write_result(msg, result_name(cfg, msg), encoded, stats.model_version)
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
        "result_reused": not wrote,
        "cpu_s": cpu,
    }
    if clients.jobs().done(claim, uri, stats.model_version, timings, output):
        logs.job_done(msg.job_id, msg.model, uri, timings)
    else:
        logs.job_skipped(msg.job_id, "finished by another attempt")


def handle_job(cfg: Config, event_type: str, data: Any) -> None:
    """Claim and run one job message. Transient faults raise so Pub/Sub redelivers."""
    message = data.get("message") if isinstance(data, dict) else None
    parent = (message or {}).get("attributes") or {}
    with tracing.span("imagen.on_job", parent, {"imagen.model": cfg.model_name or ""}) as current:
        if isinstance(message, dict):
            current.set_attribute("imagen.job_id", str(parent.get("job_id", "")))
        _job(cfg, event_type, data)


def _job(cfg: Config, event_type: str, data: Any) -> None:
    try:
        msg, _ = events.parse_job_message(event_type, data)
    except events.EventError as exc:
        logs.bad_message(str(exc))  # acknowledged: redelivery could never succeed
        return
    if cfg.model_name and msg.model != cfg.model_name:
        logs.bad_message(f"job {msg.job_id} is for {msg.model}, this worker runs {cfg.model_name}")
        return
    claim = clients.jobs().claim(msg.job_id, cfg.lease_s)
    if not isinstance(claim, Claim):
        logs.job_skipped(msg.job_id, claim)
        completion.announce(cfg, msg.job_id)  # heals an event lost to a crash
        return
    logs.job_started(msg.job_id, msg.model, claim.attempt)
    try:
        with _lease(cfg, claim):
            run_job(cfg, msg, claim)
    except BadInput as exc:
        clients.jobs().failed(claim, str(exc))
        logs.job_failed(msg.job_id, msg.model, str(exc))
        completion.announce(cfg, msg.job_id)
        return
    except Exception as exc:  # Transient, or a fault we did not foresee: let Pub/Sub retry
        error = f"{type(exc).__name__}: {exc}"
        logs.job_retrying(msg.job_id, msg.model, error)
        try:
            clients.jobs().release(claim, error)
        except Exception as release_exc:  # the lease runs out instead
            logs.lease_renewal_failed(msg.job_id, f"release failed: {release_exc}")
        raise
    completion.announce(cfg, msg.job_id)


def handle_dead_letter(cfg: Config, event_type: str, data: Any) -> None:
    """A job message out of delivery attempts: fail the job with its last error.

    While a worker still holds a live lease the dead letter is retried (raise), so a job
    that is still running is never failed under it, and one whose worker died still ends.
    """
    try:
        msg, _ = events.parse_job_message(event_type, data)
    except events.EventError as exc:
        logs.bad_message(str(exc))
        return

    def reason(job: dict[str, Any]) -> str:
        last = job.get("last_error") or "no error was recorded"
        return f"gave up after {job.get('attempts', 0)} attempts; last error: {last}"

    outcome = clients.jobs().give_up(msg.job_id, reason)
    if outcome == "failed":
        logs.job_failed(msg.job_id, msg.model, reason(clients.jobs().get(msg.job_id) or {}))
    else:
        logs.job_skipped(msg.job_id, outcome)
    completion.announce(cfg, msg.job_id)
