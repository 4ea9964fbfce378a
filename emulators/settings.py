"""The local stack's fixed loopback ports, names and folders, read once from the environment."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagen.cloud.jobstore import JobStore
from imagen.core import identity
from imagen.core.config import Config
from imagen.core.local import DEFAULT_PORT_BASE, HOST, LOCAL_BUCKET, LOCAL_PROJECT, LocalPorts
from imagen.core.models import MODELS
from imagen.core.names import Resources

ROOT = Path(__file__).resolve().parent.parent
# Production's timings scaled by 1/5, ratios kept (tests/unit/test_timings.py checks them against
# Config's defaults, Terraform's and the bridge's): lease 120 s → 24 s, delivery backoff 10..300 s
# → 2..60 s, the reconciler every 60 s → 12 s with its margins. Set on the stack's functions on top
# of Config's defaults.
TIME_SCALE = 5
# Memory is not scaled: each worker runs under production's instance memory (RLIMIT_DATA, set
# by the stack) with production's concurrency, so a job that fits here fits in the cloud.
# Time plans are not scaled by 1/5: the local accelerator is this CPU, whose tiles take 7-35x a
# T4's (TILE_SECONDS below: bench.timeplan's seconds a tile through the local Triton, doubled), so
# the per-job limit and the function timeout it sits inside grow with it, keeping production's
# ratio (360 of 540 s) while a 12 MP fidelity upscale (~30 min here) still fits.
# The local API's operator (reads every job); any other email is an ordinary caller.
LOCAL_OPERATOR = "operator@imagen.local"
LOCAL_TILE_SECONDS = {
    "upscale": 0.2,  # measured 0.098 s a tile
    "upscale_fidelity": 3.5,  # 1.72
    "enhance": 0.06,  # 0.027
    "style_comic": 0.01,  # 0.003
    "style_aged": 0.005,  # under 0.001
    "background_remove": 0.5,  # 0.22 an image
}
LOCAL_FUNCTION_ENV: Mapping[str, str] = {
    "WORKER_MEMORY_MB": "2048",
    "WORKER_CONCURRENCY": "4",
    "JOB_LEASE_S": "24",
    "RECONCILE_LEASE_MARGIN_S": "6",
    "RECONCILE_PUBLISH_GRACE_S": "12",
    "RECONCILE_QUEUED_MAX_S": "360",
    "TRITON_PROBE_S": "2",
    "WAIT_HORIZON_S": "17280",
    "FUNCTION_TIMEOUT_S": "7200",
    "JOB_TIME_LIMIT_S": "4800",
    "TILE_SECONDS": ",".join(f"{k}={v:g}" for k, v in LOCAL_TILE_SECONDS.items()),
}


def gcloud_platform() -> Path:
    """The gcloud SDK's platform/ folder (where the emulator components live)."""
    explicit = os.environ.get("CLOUDSDK_ROOT_DIR")
    if explicit:
        return Path(explicit) / "platform"
    gcloud = shutil.which("gcloud")
    if not gcloud:
        raise RuntimeError(
            "the gcloud CLI is not on PATH: install it with the pubsub-emulator "
            "and cloud-firestore-emulator components"
        )
    return Path(os.path.realpath(gcloud)).parent.parent / "platform"


@dataclass(frozen=True)
class StackSettings:
    """Ports are IMAGEN_PORT_BASE + a fixed offset per service (default base 18000)."""

    project: str
    bucket: str
    port_base: int
    state_dir: Path
    max_delivery_attempts: int = 5
    retry_min_s: int = 2
    retry_max_s: int = 60
    reconcile_every_s: int = 12
    model_repository: Path = ROOT / "triton" / "model_repository"
    function_env: Mapping[str, str] = field(default_factory=lambda: dict(LOCAL_FUNCTION_ENV))

    @classmethod
    def from_env(cls) -> StackSettings:
        return cls(
            project=os.environ.get("IMAGEN_PROJECT", LOCAL_PROJECT),
            bucket=os.environ.get("IMAGEN_BUCKET", LOCAL_BUCKET),
            port_base=int(os.environ.get("IMAGEN_PORT_BASE", DEFAULT_PORT_BASE)),
            state_dir=Path(os.environ.get("IMAGEN_STACK_DIR", str(ROOT / ".stack"))),
            max_delivery_attempts=int(os.environ.get("IMAGEN_MAX_DELIVERY_ATTEMPTS", "5")),
            retry_min_s=int(os.environ.get("IMAGEN_RETRY_MIN_S", "2")),
            retry_max_s=int(os.environ.get("IMAGEN_RETRY_MAX_S", "60")),
            model_repository=Path(
                os.environ.get("IMAGEN_MODEL_REPOSITORY", str(ROOT / "triton" / "model_repository"))
            ),
        )

    # Ports (imagen.core.local holds the offsets; the CLI reads the same) --------------------
    @property
    def ports(self) -> LocalPorts:
        return LocalPorts(self.port_base)

    @property
    def pubsub_port(self) -> int:
        return self.ports.pubsub

    @property
    def firestore_port(self) -> int:
        return self.ports.firestore

    @property
    def gcs_port(self) -> int:
        return self.ports.gcs

    @property
    def triton_port(self) -> int:
        return self.ports.triton

    @property
    def triton_metrics_port(self) -> int:
        return self.ports.triton_metrics

    @property
    def upload_fn_port(self) -> int:
        return self.ports.upload_fn

    def job_fn_port(self, model: str) -> int:
        return self.ports.job_fn(list(MODELS).index(model))

    @property
    def dead_letter_fn_port(self) -> int:
        return self.ports.dead_letter_fn

    @property
    def reconcile_fn_port(self) -> int:
        return self.ports.reconcile_fn

    @property
    def api_url(self) -> str:
        """Where the HTTP API answers."""
        return f"http://{HOST}:{self.ports.api_fn}"

    def api_key(self) -> str:
        """The key the local API checks tokens with: made once per stack folder, kept private."""
        path = self.state_dir / "api.key"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def api_env(self) -> dict[str, str]:
        """What the local API function reads to know its callers (imagen.core.identity)."""
        return {"API_AUTH": identity.LOCAL, "API_LOCAL_KEY": self.api_key(), "API_OPERATORS": LOCAL_OPERATOR}

    def api_token(self, email: str, ttl_s: int = 3600) -> str:
        """A bearer token for the local API, naming `email`."""
        return identity.mint_local(email, self.api_key(), ttl_s)

    # Names and folders -----------------------------------------------------------------
    @property
    def names(self) -> Resources:
        """Topics, subscriptions and the jobs collection, as the functions derive them."""
        return Resources(self.project)

    def worker_config(self) -> Config:
        """The config an on_job worker of this stack reads (its memory and concurrency)."""
        return Config.from_env({**self.client_env(), **self.function_env})

    def job_store(self) -> JobStore:
        """The jobs collection of the stack (with the emulator environment already set)."""
        from google.cloud import firestore

        return JobStore(firestore.Client(project=self.project), self.names.jobs_collection)

    def bucket_handle(self) -> Any:
        """The stack's bucket (with the emulator environment already set)."""
        from google.cloud import storage  # type: ignore[attr-defined]

        return storage.Client(project=self.project).bucket(self.bucket)

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pids(self) -> Path:
        return self.state_dir / "pids"

    @property
    def python_bin(self) -> Path:
        return Path(sys.executable).parent

    def client_env(self) -> dict[str, str]:
        """Environment that points gcloud storage and the google-cloud clients at the stack."""
        gcs = f"http://{HOST}:{self.gcs_port}"
        return {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "IMAGEN_BUCKET": self.bucket,
            **self.ports.emulator_env(),
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": gcs + "/",
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_CORE_PROJECT": self.project,
            "TRITON_URL": f"{HOST}:{self.triton_port}",
        }
