"""Whole-image helpers for benches and tests (the functions stream; these hold a whole image)."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from imagen.core.errors import BadInput
from imagen.core.formats import FORMATS
from imagen.core.models import ModelSpec
from imagen.image import encoding, imaging
from imagen.inference.runner import InferStats, ModelRunner


def decode(data: bytes, max_bytes: int, max_pixels: int) -> imaging.Decoded:
    """Validated, upright sRGB pixels of an upload, or BadInput with a readable reason."""
    im, header = imaging.probe(data, max_bytes, max_pixels)
    return imaging.load(im, header)


def check_result(width: int, height: int, fmt: str) -> None:
    """BadInput when the format cannot hold a result of this size."""
    limit = FORMATS[fmt].max_side
    if max(width, height) > limit:
        raise BadInput(f"the result would be {width}x{height}; a {fmt} side cannot exceed {limit} pixels")


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    """A whole result at once: JPEG at the default quality for RGB, PNG for RGBA."""
    height, width, channels = pixels.shape
    check_result(width, height, fmt)
    buf = io.BytesIO()
    encoder = encoding.open_encoder(buf, fmt, width, height, channels)
    try:
        encoder.write(pixels)
        encoder.close()
    except BaseException:
        encoder.abort()
        raise
    return buf.getvalue()


def run(
    runner: ModelRunner,
    spec: ModelSpec,
    pixels: np.ndarray,
    stats: InferStats,
    on_progress: Callable[[float], None] | None = None,
    jpeg_quality: int | None = None,
) -> np.ndarray:
    """A model's whole output at once."""
    return np.concatenate(list(runner.strips(spec, pixels, stats, on_progress, jpeg_quality)))
