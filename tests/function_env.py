"""The functions' environment in the test tiers, on top of Config's defaults."""

from __future__ import annotations

import math

from emulators.settings import LOCAL_FUNCTION_ENV
from imagen.core.config import Config
from imagen.core.models import MODELS, TRITON_MODELS, ModelSpec
from imagen.image import budget
from imagen.image.imaging import Header

# Small input limits, so the over-limit files stay small.
INPUT_LIMITS = {"MAX_INPUT_BYTES": str(8 * 1024 * 1024), "MAX_INPUT_PIXELS": "20000000"}
# Integration: handlers called in-process, no delivery backoff to keep a ratio with.
FUNCTION_ENV = {**INPUT_LIMITS, "JOB_LEASE_S": "8"}

# Memory, scaled down with the image: the system tests' photo (PHOTO, displayed size, EXIF-rotated)
# needs of its most demanding model the same share of the test budget as a 48 MP phone photo
# (12 MB JPEG) needs of production's budget through enhance. The instance memory follows from it
# as production's does (runtime + concurrency x budget); the stack caps each worker at it.
PHOTO = (900, 1200)
PROD = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})


def _need(spec: ModelSpec, width: int, height: int, source: int) -> int:
    head = Header(width, height, "JPEG", "RGB", 1, 1)
    batch = spec.tile_batch(PROD.tile_batch)
    return sum(budget.need(spec, head, source, batch, PROD.tile_concurrency).values())


SHARE = _need(MODELS["enhance"], 8000, 6000, 12_000_000) / PROD.job_budget_bytes
PHOTO_NEED = max(_need(spec, *PHOTO, 400_000) for spec in TRITON_MODELS.values())
JOB_MEMORY_MB = math.ceil(PHOTO_NEED / SHARE / 2**20)
WORKER_MEMORY_MB = PROD.worker_base_mb + PROD.worker_concurrency * JOB_MEMORY_MB
MEMORY = {"WORKER_MEMORY_MB": str(WORKER_MEMORY_MB)}

# System: the local stack's timings (production's scaled, ratios kept), the scaled memory, and
# production's pixel limit (a 50,000,000x1 strip passes it, as in production).
SYSTEM_FUNCTION_ENV = {
    **LOCAL_FUNCTION_ENV,
    **INPUT_LIMITS,
    "MAX_INPUT_PIXELS": str(PROD.max_input_pixels),
    **MEMORY,
    # The lighter upscaler when an upload does not ask (a deployment setting): the system tests
    # upscale a dozen photos to exercise the pipeline, which SRResNet takes ~10 s to ~3 min each
    # on this CPU. The default (fidelity) runs through the stack where a test asks for it.
    "UPSCALE_DEFAULT": "perceptual",
}
