"""The local stack's fixed loopback ports, names and folders, read once from the environment."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("upscale", "enhance", "style_comic", "style_aged", "background_remove")
HOST = "127.0.0.1"


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
    retry_max_s: int = 20
    job_lease_s: int = 20
    model_repository: Path = ROOT / "triton" / "model_repository"

    @classmethod
    def from_env(cls) -> StackSettings:
        return cls(
            project=os.environ.get("IMAGEN_PROJECT", "imagen-local"),
            bucket=os.environ.get("IMAGEN_BUCKET", "imagen-local"),
            port_base=int(os.environ.get("IMAGEN_PORT_BASE", "18000")),
            state_dir=Path(os.environ.get("IMAGEN_STACK_DIR", str(ROOT / ".stack"))),
            max_delivery_attempts=int(os.environ.get("IMAGEN_MAX_DELIVERY_ATTEMPTS", "5")),
            retry_min_s=int(os.environ.get("IMAGEN_RETRY_MIN_S", "2")),
            retry_max_s=int(os.environ.get("IMAGEN_RETRY_MAX_S", "20")),
            job_lease_s=int(os.environ.get("JOB_LEASE_S", "20")),
            model_repository=Path(
                os.environ.get("IMAGEN_MODEL_REPOSITORY", str(ROOT / "triton" / "model_repository"))
            ),
        )

    # Ports -----------------------------------------------------------------------------
    @property
    def pubsub_port(self) -> int:
        return self.port_base + 85

    @property
    def firestore_port(self) -> int:
        return self.port_base + 80

    @property
    def gcs_port(self) -> int:
        return self.port_base + 43

    @property
    def triton_port(self) -> int:
        return self.port_base

    @property
    def triton_metrics_port(self) -> int:
        return self.port_base + 2

    @property
    def upload_fn_port(self) -> int:
        return self.port_base + 90

    def job_fn_port(self, model: str) -> int:
        return self.port_base + 91 + MODELS.index(model)

    @property
    def dead_letter_fn_port(self) -> int:
        return self.port_base + 96

    # Names and folders -----------------------------------------------------------------
    @property
    def notification_topic(self) -> str:
        return "imagen-gcs-notifications"

    @property
    def dead_letter_topic(self) -> str:
        return "imagen-dead-letter"

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
            "PUBSUB_EMULATOR_HOST": f"{HOST}:{self.pubsub_port}",
            "FIRESTORE_EMULATOR_HOST": f"{HOST}:{self.firestore_port}",
            "STORAGE_EMULATOR_HOST": gcs,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": gcs + "/",
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_CORE_PROJECT": self.project,
            "TRITON_URL": f"{HOST}:{self.triton_port}",
        }
