"""How long a job will take, decided from the header alone: the twin of the memory plan.

A job's seconds are the sum of terms known before any pixel is decoded: decoding (by format,
and by scan for a progressive JPEG), the whole-image statistics some models need, the tiles
times the seconds a tile takes on the deployment's accelerator (TILE_SECONDS, per Triton
model), and stitching and encoding by output megapixel. The worker's own terms are this CPU's
measured rates doubled (its speed varies ~2x between sessions), times the jobs that share one
vCPU (WORKER_CONCURRENCY). A plan over JOB_TIME_LIMIT_S fails at once with the numbers; an
upscale whose encoding is what does not fit is written at the largest factor that does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from imagen.core.errors import BadInput
from imagen.core.formats import Format
from imagen.core.models import FIDELITY, PERCEPTUAL, VARIANTS, ModelSpec
from imagen.image.imaging import Header
from imagen.image.tiling import starts

# Seconds per input megapixel to decode, by format (this CPU: JPEG 0.007, progressive JPEG
# 0.012, PNG 0.025, WebP 0.019 measured at 12 MP; doubled). BMP: Pillow decodes RLE in Python,
# ~0.1 s/MP (bench.hostile). HEIF/AVIF: libheif, assumed slower.
DECODE_S_PER_MP = {"JPEG": 0.02, "MPO": 0.02, "PNG": 0.05, "WEBP": 0.04, "GIF": 0.05, "BMP": 0.2}
DECODE_S_PER_MP_DEFAULT = 0.1  # TIFF, HEIF, AVIF and anything not measured
# A progressive JPEG's decoder passes over every coefficient once per scan: up to 0.58 ms per
# scan per megapixel measured for refinement scans (bench.hostile: 1,000 scans of a 12 MP frame,
# 6.95 s); rounded up. At the cap of 100 scans a 50 MP frame plans ~3.5 s.
SCAN_S_PER_MP = 0.0007
# Whole-image statistics: k-means for a palette (~0.45 s measured), levels and noise (~0.05 s).
PALETTE_S = 1.0
LEVELS_S = 0.2
# Cutting tiles, sending them and stitching what comes back, per output megapixel (bench.memory:
# upscale's worker path 1.5 s per input MP = 0.094 s per output MP with an identity model;
# bench.timeplan: 0.045), doubled.
STITCH_S_PER_OUTPUT_MP = 0.1


@dataclass(frozen=True)
class TimePlan:
    """A job's expected seconds by term, on the deployment's accelerator."""

    decode_s: float
    prepare_s: float
    infer_s: float  # tiles x tile_s
    encode_s: float  # stitching and encoding
    tiles: int
    tile_s: float
    scale: float  # the output factor the plan was made for

    @property
    def total_s(self) -> float:
        return self.decode_s + self.prepare_s + self.infer_s + self.encode_s

    def deadline_s(self, cap_s: float) -> float:
        """When a running job is far past its plan: 3x it (at least a minute more), never later
        than `cap_s`."""
        return min(cap_s, max(3 * self.total_s, self.total_s + 60))

    def record(self) -> dict[str, float | int]:
        return {
            "decode_s": round(self.decode_s, 2),
            "prepare_s": round(self.prepare_s, 2),
            "infer_s": round(self.infer_s, 2),
            "encode_s": round(self.encode_s, 2),
            "total_s": round(self.total_s, 2),
            "tiles": self.tiles,
            "tile_s": self.tile_s,
        }

    def describe(self) -> str:
        return (
            f"~{self.total_s:.0f} s (decode {self.decode_s:.0f} s, {self.tiles} tiles x {self.tile_s:g} s "
            f"= {self.infer_s:.0f} s, stitch and encode {self.encode_s:.0f} s)"
        )


def tiles(spec: ModelSpec, width: int, height: int) -> int:
    """How many tiles (model inputs) a width x height image costs the model."""
    if spec.mode == "whole":
        return 1
    return len(starts(max(height, spec.size), spec.size, spec.overlap)) * len(
        starts(max(width, spec.size), spec.size, spec.overlap)
    )


def plan(
    spec: ModelSpec,
    header: Header,
    out: tuple[int, int, float],
    fmt: Format,
    tile_seconds: Mapping[str, float],
    cpu_share: int,
    limit_s: int,
    scale_flexible: bool = False,
) -> TimePlan:
    """The job's time plan for a result of `out` (width, height, scale); BadInput over the limit.

    `scale_flexible`: the result's factor may come down until the plan fits (upscale with no
    factor asked for), as the memory plan does for size.
    """
    in_mp = header.width * header.height / 1e6
    model_mp = in_mp * spec.scale**2
    decode_rate = DECODE_S_PER_MP.get(header.format, DECODE_S_PER_MP_DEFAULT)
    decode = cpu_share * in_mp * (decode_rate + header_scans(header) * SCAN_S_PER_MP)
    prepare = cpu_share * (PALETTE_S if spec.palette else 0.0) + cpu_share * (
        LEVELS_S if spec.needs_levels or spec.needs_noise else 0.0
    )
    n, tile_s = tiles(spec, header.width, header.height), tile_seconds[spec.name]
    stitch = cpu_share * model_mp * STITCH_S_PER_OUTPUT_MP
    fixed = decode + prepare + n * tile_s + stitch
    encode_rate = cpu_share * fmt.encode_s_per_mp
    out_w, out_h, scale = out
    result = TimePlan(
        decode, prepare, n * tile_s, stitch + encode_rate * out_w * out_h / 1e6, n, tile_s, scale
    )
    if result.total_s <= limit_s:
        return result
    if scale_flexible and fixed < limit_s:
        fits = math.sqrt((limit_s - fixed) / (encode_rate * in_mp)) if encode_rate else scale
        fits = math.floor(min(fits, scale) * 1e4) / 1e4
        if fits >= 1.0:
            encode = encode_rate * in_mp * fits**2
            return TimePlan(decode, prepare, n * tile_s, stitch + encode, n, tile_s, fits)
    raise BadInput(
        f"the image is {header.width}x{header.height}: {spec.name} would take {result.describe()} "
        f"on this deployment, over the limit of {limit_s} s per job (JOB_TIME_LIMIT_S)"
        + (
            f" (the {PERCEPTUAL} upscaler is cheaper: imagen-upscale={PERCEPTUAL})"
            if spec == VARIANTS["upscale"][FIDELITY]
            else ""
        )
    )


def header_scans(header: Header) -> int:
    """Scans the decoder makes over the image: a progressive JPEG's count, else one."""
    return max(1, int(getattr(header, "scans", 1) or 1))
