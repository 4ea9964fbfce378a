"""on_job: claim a job message and run it through Triton to done or failed."""

from __future__ import annotations

import contextvars
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from imagen.cloud.jobstore import JobStore
from imagen.cloud.objects import ResultHeaders, ResultUpload, Written
from imagen.core import logs, metadata, options, tracing, usage
from imagen.core.config import Config
from imagen.core.errors import BadInput, ServiceDown, Transient
from imagen.core.limits import UPLOAD_CHUNK_BYTES
from imagen.core.models import VARIANTS, ModelSpec, spec_for
from imagen.flow import completion
from imagen.flow.planning import Planned, plan_job
from imagen.flow.services import Services
from imagen.image import budget, compose, encoding, imaging, timeplan
from imagen.inference.runner import InferStats
from imagen.jobs import messages
from imagen.jobs.messages import JobMessage
from imagen.jobs.model import Claim, JobStatus, Outcome


class ClaimLost(Exception):
    """This worker no longer holds the job (its lease was renewed by no one and another worker,
    or the dead-letter handler, took it): stop, and touch nothing of the job's."""


class Progress:
    """How far a job is, for people watching: written when it passes another tenth of its tiles
    (at most once every lease/12 s, 10 s in production), and carried by every lease renewal in
    between. A job of a few seconds writes none; a five-minute one at most nine (it used to
    write one a second)."""

    STEP = 0.1

    def __init__(
        self, jobs: JobStore, job_id: str, lease_s: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.jobs, self.job_id, self.min_gap_s, self.clock = jobs, job_id, lease_s / 12, clock
        self.latest: float | None = None  # what the next renewal records
        self.written, self.last_write = 0.0, clock()

    def report(self, fraction: float) -> None:
        self.latest = round(fraction, 3)
        now = self.clock()
        if (
            fraction < 1.0
            and fraction >= self.written + self.STEP
            and now - self.last_write >= self.min_gap_s
        ):
            self.written, self.last_write = fraction, now
            self.jobs.progress(self.job_id, fraction)


class Lease:
    """Renews the claim every lease/3 seconds while the job runs; knows when it is lost.

    Lost: a renewal found the job no longer this claim's, or no renewal succeeded for a whole
    lease (by this instance's own monotonic clock, so another may have taken it by now).
    """

    def __init__(self, cfg: Config, svc: Services, claim: Claim) -> None:
        self.cfg, self.svc, self.claim = cfg, svc, claim
        self.stop = threading.Event()
        self.lost = threading.Event()
        self.renewed = time.monotonic()
        self.plan: dict[str, Any] = {}  # the job's time plan, recorded on the next renewal
        self.progress = Progress(svc.jobs, claim.job_id, cfg.lease_s)
        beat = contextvars.copy_context().run  # its renewals count towards the job (core.usage)
        self.thread = threading.Thread(
            target=beat, args=(self._beat,), name=f"lease-{claim.job_id[:8]}", daemon=True
        )

    def _beat(self) -> None:
        while not self.stop.wait(max(1.0, self.cfg.lease_s / 3)):
            try:
                plan = self.plan
                if not self.svc.jobs.renew(self.claim, self.cfg.lease_s, plan, self.progress.latest):
                    logs.lease_renewal_failed(self.claim.job_id, "the job is no longer this worker's")
                    self.lost.set()
                    return
                self.renewed = time.monotonic()
                if plan is self.plan:
                    self.plan = {}  # recorded once
            except Exception as exc:  # a missed beat only shortens the lease
                logs.lease_renewal_failed(self.claim.job_id, str(exc))
                if time.monotonic() - self.renewed >= self.cfg.lease_s:
                    self.lost.set()
                    return

    def check(self) -> None:
        """Raise ClaimLost once the lease is lost (called between stages and tile rows)."""
        if self.lost.is_set():
            raise ClaimLost(f"job {self.claim.job_id}: attempt {self.claim.attempt} lost its claim")

    def __enter__(self) -> Lease:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


class Deadline:
    """Stops a job far past its time plan (checked between tile rows and strips).

    Its own seconds (all but the waits for Triton's answers and for storage) past the plan's
    deadline: the job fails with the numbers. Near the function's timeout (less one Triton
    request and the upload's completion), it stops before the platform kills it: waiting, its
    attempt kept, when Triton's answers took far longer than planned; failed otherwise.
    """

    def __init__(
        self,
        plan: timeplan.TimePlan,
        cfg: Config,
        stats: InferStats,
        started: float,
        io_s: Callable[[], float],
    ) -> None:
        self.plan, self.stats, self.started, self.io_s = plan, stats, started, io_s  # started: monotonic
        timeout = cfg.function_timeout_s
        self.wall_limit_s = max(0.5 * timeout, timeout - cfg.triton_timeout_s - 30)
        self.own_limit_s = plan.deadline_s(self.wall_limit_s)

    def check(self) -> None:
        """Raise when the job is far past its plan, or near the function's timeout."""
        elapsed = time.monotonic() - self.started
        triton, io = self.stats.wait_s, self.io_s()
        own = elapsed - triton - io
        spent = (
            f"{elapsed:.0f} s ({own:.0f} s of its own work, {triton:.0f} s on Triton, {io:.0f} s on storage)"
        )
        if own > self.own_limit_s:
            raise BadInput(f"stopped after {spent}: far past its plan of {self.plan.describe()}")
        if elapsed <= self.wall_limit_s:
            return
        if triton > 3 * max(self.plan.infer_s, 1.0):
            raise ServiceDown("triton", f"Triton too slow for this job: stopped after {spent}", trip=False)
        if io > 60:
            raise ServiceDown("storage", f"storage too slow for this job: stopped after {spent}", trip=False)
        raise BadInput(
            f"stopped after {spent}, near the function's timeout: its plan of {self.plan.describe()} was "
            "too low for it"
        )


class Stopwatch:
    """Wall and this thread's CPU seconds per stage of a job."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.t0 = self.last = time.perf_counter()
        self.last_cpu = time.thread_time()

    def lap(self, stage: str) -> None:
        now, now_cpu = time.perf_counter(), time.thread_time()
        self.timings[stage] = round(now - self.last, 4)
        self.cpu[stage] = round(now_cpu - self.last_cpu, 4)
        self.last, self.last_cpu = now, now_cpu

    def split(self, stage: str, part: str, wall: float, cpu: float) -> None:
        """Move `part`'s share (measured inside `stage`) out of `stage`."""
        self.timings[stage] = round(self.timings[stage] - wall, 4)
        self.cpu[stage] = round(self.cpu[stage] - cpu, 4)
        self.timings[part], self.cpu[part] = round(wall, 4), round(cpu, 4)


@dataclasses.dataclass(frozen=True)
class Stream:
    """One job's inference streamed into its encoder and its result upload."""

    svc: Services
    spec: ModelSpec
    planned: Planned
    stats: InferStats
    lease: Lease
    deadline: Deadline
    upload: ResultUpload


def run_job(cfg: Config, svc: Services, msg: JobMessage, lease: Lease) -> None:
    """Download, plan, decode, infer into a streaming encoder and upload; marks the job done.

    Raises BadInput, Transient, or ClaimLost when another took the job meanwhile.
    """
    claim, watch, started = lease.claim, Stopwatch(), time.monotonic()
    asked = options.from_record(msg.model, claim.options)
    spec = spec_for(msg.model, asked.upscaler or cfg.upscale_default)
    source = svc.storage.download(msg, cfg.max_input_bytes)
    watch.lap("download_s")
    image, header = imaging.probe(source.data, cfg.max_input_bytes, cfg.max_input_pixels)
    planned = plan_job(cfg, spec, header, len(source.data), asked)  # before any pixel is decoded
    plan, opts = planned.memory, planned.opts
    lease.plan = planned.times.record()
    copied = {k: v for k, v in source.metadata.items() if k not in options.NOT_COPIED}
    headers = ResultHeaders(
        plan.format.content_type, cfg.result_cache_control, {**copied, **_used(opts, plan, spec)}, claim.run
    )
    name = cfg.names.result_name(msg.model, msg.name, plan.format.extension)
    upload = svc.storage.begin_result(msg, name, headers, UPLOAD_CHUNK_BYTES)
    stats = InferStats()
    io_s = lambda: watch.timings["download_s"] + getattr(upload, "io_s", 0.0)  # noqa: E731
    deadline = Deadline(planned.times, cfg, stats, started, io_s)
    box: compose.Box | None = None
    if isinstance(upload, Written):  # an earlier attempt wrote it and died before `done`
        del image, source
        written, encoded_bytes = upload, upload.size
        stats.model_version = upload.metadata.get(metadata.MODEL_VERSION, "")
        box = compose.parse_box(upload.metadata.get(metadata.CROP_BOX, ""), plan.width, plan.height)
    else:
        try:
            decoded = imaging.load(image, header, keep_alpha=plan.alpha)
            del image, source  # only the decoded pixels stay
            watch.lap("decode_s")
            stream = Stream(svc, spec, planned, stats, lease, deadline, upload)
            encoded_bytes, enc_wall, enc_cpu, box = _infer_and_write(stream, decoded, header.jpeg_quality)
            watch.lap("infer_s")  # the model and stitching; the encoder's share is taken out
            watch.split("infer_s", "encode_s", enc_wall, enc_cpu)
            lease.check()  # a stale worker writes no result
            written = upload.commit()
        except MemoryError as exc:
            upload.abort()
            raise _out_of_memory(cfg, header, plan, claim.attempt) from exc
        except BaseException:
            upload.abort()
            raise
        watch.lap("upload_s")
    watch.timings["total_s"] = round(time.perf_counter() - watch.t0, 4)
    watch.timings["infer_wait_s"] = round(stats.wait_s, 4)
    output = _output(cfg, spec, planned, header, stats, watch, encoded_bytes, not written.wrote, box)
    if svc.jobs.done(claim, written.uri, stats.model_version, watch.timings, output):
        logs.job_done(msg.job_id, msg.model, written.uri, watch.timings)
        return
    # The claim was lost between the check and `done`. A result must not outlive a failed job;
    # for a job another attempt now holds it stays (this job's own: that attempt reuses it).
    job = svc.jobs.get(msg.job_id)
    if written.wrote and job is not None and job.status == JobStatus.FAILED:
        svc.storage.remove(written)
    raise ClaimLost(f"job {msg.job_id}: attempt {claim.attempt} lost its claim before it was done")


def _output(
    cfg: Config,
    spec: ModelSpec,
    planned: Planned,
    header: imaging.Header,
    stats: InferStats,
    watch: Stopwatch,
    encoded_bytes: int,
    reused: bool,
    box: compose.Box | None,
) -> dict[str, Any]:
    """The job's `output` record: what was written, from what, and what it cost."""
    plan = planned.memory
    output = {
        "width": plan.width,
        "height": plan.height,
        "input_width": header.width,
        "input_height": header.height,
        "scale": plan.scale,
        "model_scale": spec.scale,
        "triton_model": spec.name,
        "bytes": encoded_bytes,
        "format": plan.format.name,
        "content_type": plan.format.content_type,
        "channels": plan.channels,
        "alpha_kept": plan.alpha,
        "options": planned.opts.record(),
        "tiles": stats.tiles,
        "requests": stats.requests,
        "source_format": header.format,
        "source_frames": header.frames,
        "result_reused": reused,
        "memory_need_bytes": plan.need_bytes,
        "memory_budget_bytes": cfg.job_budget_bytes,
        "time_plan": planned.times.record(),
        "time_limit_s": cfg.job_time_limit_s,
        "busy_retries": stats.busy_retries,
        "cpu_s": watch.cpu,
    }
    if box is not None:
        output.update(width=box[2] - box[0], height=box[3] - box[1], crop_box=list(box))
    return output


def _out_of_memory(cfg: Config, header: imaging.Header, plan: budget.Plan, attempt: int) -> Exception:
    """A MemoryError though the plan fit: once, the instance's other jobs may have held the
    memory (retried elsewhere); again, it is this image's (failed, with the numbers)."""
    what = (
        f"ran out of memory: the image is {header.width}x{header.height}, estimated at "
        f"~{budget.gib(plan.need_bytes)} of a {budget.gib(cfg.job_budget_bytes)} budget per job"
    )
    if attempt == 1:
        return Transient(f"{what}; retrying once on another instance")
    return BadInput(what)


def _used(opts: options.Options, plan: budget.Plan, spec: ModelSpec) -> dict[str, str]:
    """The options a result was written with, as its metadata says them (defaults resolved)."""
    variants = VARIANTS.get(spec.model, {})
    resolved = dataclasses.replace(
        opts,
        format=plan.format,
        quality=opts.quality_for(plan.format) if plan.format.lossy else opts.quality,
        scale=plan.scale if plan.scale != 1 or opts.scale is not None else None,
        upscaler=next((v for v, candidate in variants.items() if candidate == spec), opts.upscaler),
    )
    return {**resolved.record(), metadata.ALPHA: str(plan.channels in (2, 4)).lower()}


def _infer_and_write(
    stream: Stream, decoded: imaging.Decoded, jpeg_quality: int | None
) -> tuple[int, float, float, compose.Box | None]:
    """Run the model strip by strip into the encoder, which streams into the upload.

    Returns the bytes written, the wall and CPU seconds this thread spent in the encoder, and
    the crop box (background_remove with imagen-crop=subject).
    """
    svc, spec, stats, lease = stream.svc, stream.spec, stream.stats, stream.lease
    deadline, upload = stream.deadline, stream.upload
    plan, opts = stream.planned.memory, stream.planned.opts

    def report(fraction: float) -> None:  # after each tile row
        lease.check()
        deadline.check()
        lease.progress.report(fraction)

    if spec.mode == "whole":
        out = compose.cutout(decoded.pixels, svc.inference.mask(spec, decoded.pixels, stats), opts)
        if out.box is not None:
            upload.annotate(metadata.CROP_BOX, compose.format_box(out.box))
    else:
        strips = svc.inference.strips(spec, decoded.pixels, stats, report, jpeg_quality)
        out = compose.with_alpha(strips, plan.model_width, plan.model_height, decoded.alpha, spec.scale)
    resized = (plan.width, plan.height) if plan.resized else None
    encoder = encoding.open_encoder(
        upload, plan.format.name, out.width, out.height, out.channels, resized, opts.quality_for(plan.format)
    )
    wall = cpu = 0.0
    try:
        for i, strip in enumerate(out.strips):
            if i == 0:  # Triton said which version it ran: the result's metadata says so too
                upload.annotate(metadata.MODEL_VERSION, stats.model_version)
            deadline.check()
            t, c = time.perf_counter(), time.thread_time()
            encoder.write(strip)
            wall, cpu = wall + time.perf_counter() - t, cpu + time.thread_time() - c
        t, c = time.perf_counter(), time.thread_time()
        encoder.close()
        wall, cpu = wall + time.perf_counter() - t, cpu + time.thread_time() - c
    except BaseException:
        encoder.abort()
        upload.abort()
        raise
    return upload.bytes, wall, cpu, out.box


def handle_job(cfg: Config, svc: Services, event_type: str, data: Any) -> None:
    """Claim and run one job message. Transient faults raise so Pub/Sub redelivers."""
    message = data.get("message") if isinstance(data, dict) else None
    parent = (message or {}).get("attributes") or {}
    with tracing.span("imagen.on_job", parent, {"imagen.model": cfg.model_name or ""}) as current:
        if isinstance(message, dict):
            current.set_attribute("imagen.job_id", str(parent.get("job_id", "")))
        with usage.metered("on_job"):
            _job(cfg, svc, event_type, data)


def _job(cfg: Config, svc: Services, event_type: str, data: Any) -> None:
    try:
        msg, _ = messages.parse_job_message(event_type, data)
    except messages.EventError as exc:
        logs.bad_message(str(exc))  # acknowledged: redelivery could never succeed
        return
    usage.name_job(msg.job_id, msg.model)
    if cfg.model_name and msg.model != cfg.model_name:
        logs.bad_message(f"job {msg.job_id} is for {msg.model}, this worker runs {cfg.model_name}")
        return
    try:
        svc.triton.admit()  # while Triton is known to be down: turned away at once, unclaimed
    except ServiceDown as exc:
        if _wait(cfg, svc, msg, exc):
            raise  # not acknowledged: the message comes back after Pub/Sub's backoff
        return
    claim = svc.jobs.claim(msg.job_id, cfg.lease_s, cfg.max_attempts, cfg.function_timeout_s)
    if claim is Outcome.FAILED_NOW:  # out of attempts, or its last one ran to the timeout
        failed = svc.jobs.get(msg.job_id)
        logs.job_failed(msg.job_id, msg.model, failed.reason if failed else "")
        completion.announce(cfg, svc, msg.job_id)
        return
    if not isinstance(claim, Claim):
        # Acknowledged, also while another worker runs it: a delivery that meets a live lease
        # is not an attempt (the reconciler republishes the job if that worker died).
        logs.job_skipped(msg.job_id, claim)
        completion.announce(cfg, svc, msg.job_id)  # heals an event lost to a crash
        return
    logs.job_started(msg.job_id, msg.model, claim.attempt)
    try:
        completion.started(cfg, svc, claim, msg)
        with Lease(cfg, svc, claim) as lease:
            run_job(cfg, svc, msg, lease)
    except ClaimLost as exc:
        logs.job_skipped(msg.job_id, str(exc))  # the job is another's now: nothing to change
        return
    except BadInput as exc:
        if svc.jobs.failed(claim, str(exc)):
            logs.job_failed(msg.job_id, msg.model, str(exc))
        completion.announce(cfg, svc, msg.job_id)
        return
    except ServiceDown as exc:  # the service's fault: the job waits, its attempt given back
        if exc.service == "triton" and exc.trip:
            svc.triton.trip(str(exc))
        try:
            released = svc.jobs.release(
                claim, f"{type(exc).__name__}: {exc}", exc.service, cfg.wait_horizon_s
            )
        except Exception as release_exc:  # the lease runs out instead
            logs.lease_renewal_failed(msg.job_id, f"release failed: {release_exc}")
            raise exc from None
        job = svc.jobs.get(msg.job_id) if released is not Outcome.WAITING else None
        if job is None or job.status != JobStatus.FAILED:  # failed: past the horizon, or by another
            logs.job_waiting(msg.job_id, msg.model, exc.service, str(exc))
            raise
        logs.job_failed(msg.job_id, msg.model, job.reason)
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


def _wait(cfg: Config, svc: Services, msg: JobMessage, exc: ServiceDown) -> bool:
    """A delivery turned away because a service is down: the job says what it waits for; True
    when it should come back later. Past the wait horizon the job fails instead."""
    outcome = svc.jobs.note_waiting(
        msg.job_id, exc.service, f"{type(exc).__name__}: {exc}", cfg.wait_horizon_s
    )
    if outcome is Outcome.WAITING:
        logs.job_waiting(msg.job_id, msg.model, exc.service, str(exc))
        return True
    if outcome is Outcome.FAILED_NOW:
        job = svc.jobs.get(msg.job_id)
        logs.job_failed(msg.job_id, msg.model, job.reason if job else "")
    else:
        logs.job_skipped(msg.job_id, outcome)
    completion.announce(cfg, svc, msg.job_id)
    return False
