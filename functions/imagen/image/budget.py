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

from imagen.core.errors import BadInput
from imagen.core.formats import FORMATS, Format
from imagen.core.limits import BLOCK_BYTES, UPLOAD_CHUNK_BYTES
from imagen.core.models import ModelSpec
from imagen.core.options import Options
from imagen.image.imaging import BLOCK_PIXELS, STRIP_ROWS, Header
from imagen.image.tiling import Stitcher

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
    format: Format = FORMATS["JPEG"]
    channels: int = 3  # as written: 1 a matte, 3 RGB, 4 RGBA
    alpha: bool = False  # the upload's alpha is kept beside the model's colour

    @property
    def need_bytes(self) -> int:
        return sum(self.need.values())

    @property
    def resized(self) -> bool:
        return (self.width, self.height) != (self.model_width, self.model_height)


def gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / MIB:.0f} MiB"


def output_size(
    spec: ModelSpec, header: Header, limits: OutputLimits, fmt: Format, wanted: float | None = None
) -> tuple[int, int, float]:
    """The result's width, height and scale: the one asked for (else the model's own), or the
    largest that fits."""
    w, h = header.width, header.height
    side = fmt.max_side
    by_side, by_pixels = side / max(w, h), math.sqrt(limits.max_pixels / (w * h))
    target = float(spec.scale) if wanted is None else min(wanted, float(spec.scale))
    fits = min(target, by_side, by_pixels)
    if fits >= target and target == int(target):
        return w * int(target), h * int(target), target
    if fits < 1.0:
        reason = (
            f"a {fmt.name} side cannot exceed {side} pixels"
            if by_side <= by_pixels
            else f"a result may have at most {limits.max_pixels} pixels (MAX_OUTPUT_PIXELS)"
        )
        raise BadInput(f"the image is {w}x{h} and even its x1 result cannot be written: {reason}")
    out_w, out_h = max(1, math.floor(w * fits + 1e-6)), max(1, math.floor(h * fits + 1e-6))
    return out_w, out_h, round(fits, 4)


def need(
    spec: ModelSpec,
    header: Header,
    source_bytes: int,
    batch: int,
    inflight: int,
    result: tuple[int, int, int] | None = None,
    fmt: Format | None = None,
    alpha: bool = False,
    opts: Options | None = None,
) -> dict[str, int]:
    """Bytes a job holds at its peak, by term. `result` is the written (width, height, channels),
    `alpha` whether the upload's alpha plane is kept beside its colour."""
    w, h = header.width, header.height
    px = w * h
    opts = opts or Options()
    terms = {
        "source file": source_bytes,
        "decoded image": (4 if alpha else 3) * px,
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
            + (17 * strip_px if opts.background is not None else 0)  # the blend, in uint16
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
        if alpha:  # the alpha plane's lanczos copy, and each strip's alpha rows and RGBA join
            running += (px if s > 1 else 0) + out_rows * w * s * 5 + w * s * _VIPS_LINES
    if fmt is not None and fmt.whole_image_bytes_per_pixel and result is not None:
        out_w, out_h, channels = result
        running += fmt.whole_image_bytes_per_pixel * out_w * out_h * max(channels, 3) // 3
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
    opts: Options | None = None,
) -> Plan:
    """The result's size, format and the job's need; BadInput when any cannot be met.

    A crop is only known once the mask is; the plan counts the whole image (an upper bound).
    """
    opts = opts or Options()
    # an RGB model keeps the upload's alpha unless the format asked for cannot hold it (flattened)
    alpha = (
        header.alpha and spec.output == "rgb" and opts.keeps_alpha() and (opts.format or FORMATS["PNG"]).alpha
    )
    fmt = opts.result_format(spec.model, alpha or spec.output == "alpha")
    channels = (
        1
        if opts.mask
        else 3
        if (spec.output == "alpha" and opts.background)
        else 4
        if (alpha or spec.output == "alpha")
        else 3
    )
    out_w, out_h, scale = output_size(spec, header, limits, fmt, opts.scale)
    model_w, model_h = header.width * spec.scale, header.height * spec.scale
    terms = need(
        spec,
        header,
        source_bytes,
        spec.tile_batch(batch),
        inflight,
        (out_w, out_h, channels),
        fmt,
        alpha,
        opts,
    )
    result = Plan(out_w, out_h, model_w, model_h, scale, terms, fmt, channels, alpha)
    if result.need_bytes > budget_bytes:
        hint = (
            f" (a streamed format, jpeg or png, needs less than {fmt.option})"
            if fmt.whole_image_bytes_per_pixel
            else ""
        )
        raise BadInput(
            f"the image is {header.width}x{header.height}: {spec.model} needs ~{gib(result.need_bytes)}, "
            f"over the budget of {gib(budget_bytes)} per job{hint}"
        )
    return result
