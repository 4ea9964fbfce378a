"""What a job will write and the memory it will need, decided from the header alone.

A job's memory is the sum of what it holds at its peak, each term a figure known before any
pixel is decoded (the terms follow the data structures in imaging, inference, tiling and
encoding). A job whose need is over its budget, or whose result no format could hold, fails
at once with the numbers; an upscale that would be too large is written at the largest
factor that fits, as Real-ESRGAN's --outscale and imgix do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .encoding import BLOCK_BYTES
from .errors import BadInput
from .imaging import BLOCK_PIXELS, MAX_SIDE, STRIP_ROWS, Header
from .models import ModelSpec
from .storage_io import UPLOAD_CHUNK_BYTES
from .tiling import Stitcher

MIB = 1024 * 1024
GIB = 1024 * MIB
_ENCODER_BLOCKS = 6  # encoder blocks held at once (framing, a queue of 2, vips's read buffer)
# libvips's JPEG pipeline fed from our stream, measured (bench/memory.py; encoder alone at
# 1,000..32,000 px wide): ~16 MiB with our blocks, and ~700 scanlines of the image; counted as
# 10 MiB + the blocks + 768 scanlines.
_VIPS_FIXED = 10 * MIB
_VIPS_LINES = 768


@dataclass(frozen=True)
class OutputLimits:
    max_pixels: int  # the most pixels a result may have (MAX_OUTPUT_PIXELS)


@dataclass(frozen=True)
class Plan:
    """The result's size and the job's memory need, before decoding."""

    width: int  # as written
    height: int
    model_width: int  # as the model produces it (before any resize on the way out)
    model_height: int
    scale: float  # written / input, per side
    need: dict[str, int] = field(default_factory=dict)  # bytes per term at the peak

    @property
    def need_bytes(self) -> int:
        return sum(self.need.values())

    @property
    def resized(self) -> bool:
        return (self.width, self.height) != (self.model_width, self.model_height)


def gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / MIB:.0f} MiB"


def output_size(spec: ModelSpec, header: Header, limits: OutputLimits) -> tuple[int, int, float]:
    """The result's width, height and scale: the model's own, or the largest that fits."""
    w, h = header.width, header.height
    side = MAX_SIDE[spec.result_format]
    by_side, by_pixels = side / max(w, h), math.sqrt(limits.max_pixels / (w * h))
    fits = min(float(spec.scale), by_side, by_pixels)
    if fits >= spec.scale:
        return w * spec.scale, h * spec.scale, float(spec.scale)
    if fits < 1.0:
        reason = (
            f"a {spec.result_format} side cannot exceed {side} pixels"
            if by_side <= by_pixels
            else f"a result may have at most {limits.max_pixels} pixels (MAX_OUTPUT_PIXELS)"
        )
        raise BadInput(f"the image is {w}x{h} and even its x1 result cannot be written: {reason}")
    out_w, out_h = max(1, math.floor(w * fits + 1e-6)), max(1, math.floor(h * fits + 1e-6))
    return out_w, out_h, round(fits, 4)


def need(spec: ModelSpec, header: Header, source_bytes: int, batch: int, inflight: int) -> dict[str, int]:
    """Bytes a job holds at its peak, by term."""
    w, h = header.width, header.height
    px = w * h
    terms = {
        "source file": source_bytes,
        "decoded image": 3 * px,
        "result upload": 3 * UPLOAD_CHUNK_BYTES,  # what is held before a chunk goes, and its copies
        # Pillow's frame and one conversion strip live only while decoding, before any model
        # buffer exists; the larger of the two phases counts.
    }
    strip_px = min(STRIP_ROWS, h) * w
    block_px = min(strip_px, BLOCK_PIXELS)
    decoding = header.decoder_bytes_per_pixel * px + 28 * block_px  # + one block's conversions
    if spec.mode == "whole":
        running = (
            3 * 4 * strip_px  # shrink: a contiguous strip and Pillow's copy of it
            + 4 * strip_px  # an RGBA strip
            + _ENCODER_BLOCKS * BLOCK_BYTES
        )
    else:
        s, ts = spec.scale, spec.size * spec.scale
        out_rows = min(ts, h * s)
        tiles = inflight * batch * (spec.size**2 * 3 + ts * ts * 3) * 2  # request + response copies
        strip = out_rows * w * s * 3
        running = (
            tiles
            + Stitcher.buffer_bytes(spec.size, s, w, 3) * out_rows // ts  # float accumulator
            + 4 * (w + h) * s * 2  # weight sums
            + ts * ts * 3 * 4 * 2  # one weighted tile in float
            + strip
            + _ENCODER_BLOCKS * BLOCK_BYTES
            + _VIPS_FIXED
            + w * s * 3 * _VIPS_LINES  # vips reads the model's output (wider than a resized result)
        )
    terms["decoding (Pillow frame, one strip)" if decoding > running else "model, stitching and encoder"] = (
        max(decoding, running)
    )
    return terms


def plan(
    spec: ModelSpec,
    header: Header,
    source_bytes: int,
    limits: OutputLimits,
    budget_bytes: int,
    batch: int,
    inflight: int,
) -> Plan:
    """The result's size and the job's need; BadInput when either cannot be met."""
    out_w, out_h, scale = output_size(spec, header, limits)
    model_w, model_h = header.width * spec.scale, header.height * spec.scale
    terms = need(spec, header, source_bytes, batch, inflight)
    result = Plan(out_w, out_h, model_w, model_h, scale, terms)
    if result.need_bytes > budget_bytes:
        raise BadInput(
            f"the image is {header.width}x{header.height}: {spec.name} needs ~{gib(result.need_bytes)}, "
            f"over the budget of {gib(budget_bytes)} per job"
        )
    return result
