"""Configuration, read once from the environment into a typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from imagen.core import identity
from imagen.core.models import DEFAULT_VARIANT, GPU_TILE_SECONDS, MODELS, TRITON_MODELS, VARIANTS
from imagen.core.names import Resources


class ConfigError(ValueError):
    """The environment does not describe a usable deployment."""


def _tile_seconds(env: Mapping[str, str]) -> dict[str, float]:
    """TILE_SECONDS="model=seconds,..." over the built-in GPU figures."""
    out = dict(GPU_TILE_SECONDS)
    for item in filter(None, (part.strip() for part in env.get("TILE_SECONDS", "").split(","))):
        name, _, raw = item.partition("=")
        if name not in TRITON_MODELS:
            raise ConfigError(f"TILE_SECONDS names {name!r}, not one of {', '.join(TRITON_MODELS)}")
        try:
            out[name] = float(raw)
        except ValueError as exc:
            raise ConfigError(f"TILE_SECONDS: {name} must be a number of seconds, got {raw!r}") from exc
        if out[name] <= 0:
            raise ConfigError(f"TILE_SECONDS: {name} must be above 0, got {raw!r}")
    return out


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = env.get(key, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Config:
    """Everything the functions read from their environment (names match the seed's)."""

    names: Resources  # project, topics, collection, prefixes
    model_name: str | None  # set on each on_job deployment; None for on_upload
    triton_url: str
    max_input_bytes: int = 50 * 1024 * 1024
    max_input_pixels: int = 50_000_000
    max_output_pixels: int = 200_000_000  # upscale writes the largest factor that fits under it
    # The HTTP API takes a file in the request up to this (Cloud Run's request limit is 32 MiB);
    # larger ones go through a signed URL, up to max_input_bytes.
    api_max_upload_bytes: int = 30 * 1024 * 1024
    # Who the API's callers are (imagen.core.identity): `platform` reads the Google ID token Cloud
    # Run verified; `local` checks tokens signed with API_LOCAL_KEY.
    api_auth: str = "platform"
    api_operators: tuple[str, ...] = ()  # emails that read every job (Terraform `api_operators`)
    api_local_key: str = ""  # the local stack's key for its HS256 tokens (`python -m emulators token`)
    api_max_wait_s: int = 60  # the most a POST may ask to wait for its job (`Prefer: wait=N`)
    api_link_ttl_s: int = 900  # seconds a signed upload or result URL stays valid
    # Memory: each job's budget is the instance's memory less the runtime's own, shared by the
    # jobs one instance runs at once (Terraform: worker_memory, worker_concurrency).
    worker_memory_mb: int = 2048
    worker_concurrency: int = 4
    worker_base_mb: int = 384  # the interpreter, libraries and clients before any job
    job_memory_mb: int = 0  # set: this budget per job instead of the one derived above
    triton_timeout_s: int = 120
    tile_batch: int = 8
    tile_concurrency: int = 4
    # Time: a job's plan (decode, tiles x the accelerator's seconds a tile, encode) must fit in
    # job_time_limit_s, well inside the function's timeout (Terraform: worker_timeout_seconds).
    function_timeout_s: int = 540
    job_time_limit_s: int = 360
    tile_seconds: Mapping[str, float] = field(default_factory=lambda: dict(GPU_TILE_SECONDS))
    # Waiting: how often a worker that found Triton down probes it, and how long a job may wait
    # for a service before it fails (inside Pub/Sub's 7-day retention).
    triton_probe_s: int = 10
    wait_horizon_s: int = 86_400
    lease_s: int = 120  # renewed every lease_s/3 while the job runs
    max_attempts: int = 5  # claims of a job before it fails (Terraform: max_delivery_attempts)
    # The reconciler (every 60 s in production): what counts as stuck, in the lease's ratios.
    reconcile_lease_margin_s: int = 30  # running this long past its lease: republished
    reconcile_publish_grace_s: int = 60  # queued with its publish pending this long: republished
    reconcile_queued_max_s: int = 1800  # queued this long, whatever the reason: republished
    reconcile_scan_max: int = 1000  # objects under the model prefixes looked at per pass
    upscale_default: str = DEFAULT_VARIANT["upscale"]  # when an upload does not say (UPSCALE_DEFAULT)
    result_cache_control: str = (
        "private, max-age=3600"  # Cache-Control of every result (RESULT_CACHE_CONTROL)
    )
    job_retention_days: int = 30  # days an ended job is kept (0: for ever; Terraform `jobs_ttl_days`)
    bucket: str = ""  # the uploads' bucket (BUCKET): the reconciler finds objects with no job there
    otel_enabled: bool = False
    otel_endpoint: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or ""
        if not project:
            raise ConfigError("GOOGLE_CLOUD_PROJECT is not set")
        model = env.get("MODEL_NAME") or None
        if model is not None and model not in MODELS:
            raise ConfigError(f"MODEL_NAME={model!r} is not one of {', '.join(MODELS)}")
        prefix = env.get("RESULT_PREFIX", Resources.result_prefix)
        if not prefix.endswith("/") or prefix == "/":
            raise ConfigError(f"RESULT_PREFIX must be a folder ending in '/', got {prefix!r}")
        cfg = cls(
            names=Resources.from_env(env, project),
            model_name=model,
            triton_url=env.get("TRITON_URL", "127.0.0.1:8000").removeprefix("http://"),
            max_input_bytes=_int(env, "MAX_INPUT_BYTES", cls.max_input_bytes, 1),
            max_input_pixels=_int(env, "MAX_INPUT_PIXELS", cls.max_input_pixels, 1),
            max_output_pixels=_int(env, "MAX_OUTPUT_PIXELS", cls.max_output_pixels, 1),
            api_max_upload_bytes=_int(env, "API_MAX_UPLOAD_BYTES", cls.api_max_upload_bytes, 1),
            api_auth=env.get("API_AUTH", cls.api_auth),
            api_operators=tuple(
                filter(None, (o.strip().lower() for o in env.get("API_OPERATORS", "").split(",")))
            ),
            api_local_key=env.get("API_LOCAL_KEY", ""),
            api_max_wait_s=_int(env, "API_MAX_WAIT_S", cls.api_max_wait_s, 0),
            api_link_ttl_s=_int(env, "API_LINK_TTL_S", cls.api_link_ttl_s, 60),
            worker_memory_mb=_int(env, "WORKER_MEMORY_MB", cls.worker_memory_mb, 64),
            worker_concurrency=_int(env, "WORKER_CONCURRENCY", cls.worker_concurrency, 1),
            worker_base_mb=_int(env, "WORKER_BASE_MB", cls.worker_base_mb, 0),
            job_memory_mb=_int(env, "JOB_MEMORY_MB", cls.job_memory_mb, 0),
            triton_timeout_s=_int(env, "TRITON_TIMEOUT_S", cls.triton_timeout_s, 1),
            tile_batch=_int(env, "TILE_BATCH", cls.tile_batch, 1),
            tile_concurrency=_int(env, "TILE_CONCURRENCY", cls.tile_concurrency, 1),
            function_timeout_s=_int(env, "FUNCTION_TIMEOUT_S", cls.function_timeout_s, 1),
            job_time_limit_s=_int(env, "JOB_TIME_LIMIT_S", cls.job_time_limit_s, 1),
            tile_seconds=_tile_seconds(env),
            triton_probe_s=_int(env, "TRITON_PROBE_S", cls.triton_probe_s, 1),
            wait_horizon_s=_int(env, "WAIT_HORIZON_S", cls.wait_horizon_s, 1),
            lease_s=_int(env, "JOB_LEASE_S", cls.lease_s, 1),
            max_attempts=_int(env, "MAX_ATTEMPTS", cls.max_attempts, 1),
            reconcile_lease_margin_s=_int(env, "RECONCILE_LEASE_MARGIN_S", cls.reconcile_lease_margin_s, 0),
            reconcile_publish_grace_s=_int(
                env, "RECONCILE_PUBLISH_GRACE_S", cls.reconcile_publish_grace_s, 1
            ),
            reconcile_queued_max_s=_int(env, "RECONCILE_QUEUED_MAX_S", cls.reconcile_queued_max_s, 1),
            reconcile_scan_max=_int(env, "RECONCILE_SCAN_MAX", cls.reconcile_scan_max, 0),
            upscale_default=env.get("UPSCALE_DEFAULT", cls.upscale_default),
            result_cache_control=env.get("RESULT_CACHE_CONTROL", cls.result_cache_control),
            job_retention_days=_int(env, "JOB_RETENTION_DAYS", cls.job_retention_days, 0),
            bucket=env.get("BUCKET") or env.get("IMAGEN_BUCKET", ""),
            otel_enabled=env.get("OTEL_ENABLED", "").lower() in ("1", "true", "yes"),
            otel_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        )
        if cfg.upscale_default not in VARIANTS["upscale"]:
            raise ConfigError(
                f"UPSCALE_DEFAULT must be one of {', '.join(VARIANTS['upscale'])}, "
                f"got {cfg.upscale_default!r}"
            )
        if cfg.api_auth not in identity.MODES:
            raise ConfigError(f"API_AUTH must be one of {', '.join(identity.MODES)}, got {cfg.api_auth!r}")
        room = cfg.function_timeout_s - cfg.triton_timeout_s - 30  # one Triton request, the upload's end
        if cfg.job_time_limit_s > room:
            raise ConfigError(
                f"JOB_TIME_LIMIT_S={cfg.job_time_limit_s} must leave one Triton request "
                f"(TRITON_TIMEOUT_S={cfg.triton_timeout_s}) and 30 s inside the function's timeout "
                f"FUNCTION_TIMEOUT_S={cfg.function_timeout_s}: at most {room}"
            )
        if not cfg.job_memory_mb and cfg.worker_memory_mb <= cfg.worker_base_mb:
            raise ConfigError(
                f"WORKER_MEMORY_MB={cfg.worker_memory_mb} leaves no memory for jobs after "
                f"WORKER_BASE_MB={cfg.worker_base_mb}; raise it or set JOB_MEMORY_MB"
            )
        return cfg

    @property
    def job_budget_bytes(self) -> int:
        """The memory one job may use: (instance memory - runtime) / concurrent jobs."""
        if self.job_memory_mb:
            return self.job_memory_mb * 1024 * 1024
        share = (self.worker_memory_mb - self.worker_base_mb) // self.worker_concurrency
        return max(share, 0) * 1024 * 1024

    @property
    def project(self) -> str:
        return self.names.project
