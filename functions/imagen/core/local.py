"""The local stack's facts: where it listens (IMAGEN_PORT_BASE plus a fixed offset per
service), its project and its bucket.

The one source of them: the stack (emulators/settings.py) starts its services here, and the CLI's
`--local` points the google-cloud clients here. It lives in the core because both install the
core, and the CLI installs without the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

HOST = "127.0.0.1"
DEFAULT_PORT_BASE = 18000
LOCAL_PROJECT = "imagen-local"
LOCAL_BUCKET = "imagen-local"


@dataclass(frozen=True)
class LocalPorts:
    base: int = DEFAULT_PORT_BASE

    @property
    def triton(self) -> int:
        return self.base

    @property
    def triton_metrics(self) -> int:
        return self.base + 2

    @property
    def gcs(self) -> int:
        return self.base + 43

    @property
    def firestore(self) -> int:
        return self.base + 80

    @property
    def pubsub(self) -> int:
        return self.base + 85

    @property
    def upload_fn(self) -> int:
        return self.base + 90

    def job_fn(self, index: int) -> int:
        """The index-th model's on_job function."""
        return self.base + 91 + index

    @property
    def dead_letter_fn(self) -> int:
        return self.base + 96

    @property
    def reconcile_fn(self) -> int:
        return self.base + 97

    @property
    def api_fn(self) -> int:
        """The HTTP API (function `api`)."""
        return self.base + 98

    def emulator_env(self) -> dict[str, str]:
        """What points the google-cloud clients at the stack's emulators."""
        return {
            "PUBSUB_EMULATOR_HOST": f"{HOST}:{self.pubsub}",
            "FIRESTORE_EMULATOR_HOST": f"{HOST}:{self.firestore}",
            "STORAGE_EMULATOR_HOST": f"http://{HOST}:{self.gcs}",
        }
