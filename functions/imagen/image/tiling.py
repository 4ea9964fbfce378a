"""Fixed-size overlapping tiles and seamless blending, streamed one tile row at a time.

Every tile has the same shape, so Triton's dynamic batcher can merge tiles from many
requests. A tile that reaches past the image is edge-padded on its own (the image itself is
never padded, so a 50,000,000x1 strip costs no more than its pixels). Overlaps are blended
with linear ramps that give no weight to a margin at each inner tile edge: with the margin at
least the model's receptive field, every pixel that counts saw the same neighbourhood as in one
whole-image pass, so the stitched image equals that pass (within rounding). Weights are
separable, so their sums are two vectors; the float accumulator spans the rows of one tile row
and nothing more, and finished rows leave it as uint8 strips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imagen.core.models import TILE_RAMP

_SLAB_ROWS = 16


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride tile-overlap, the last one flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    out = list(range(0, length - tile, stride))
    out.append(length - tile)
    return out


RAMP = TILE_RAMP


def overlap_for(margin: int) -> int:
    """The overlap of two tiles whose ramps skip `margin` pixels at each inner edge."""
    return 2 * margin + RAMP


def _ramp(size: int, overlap: int, margin: int, low: bool, high: bool) -> np.ndarray:
    """Per-pixel weight along one tile axis: ~0 over the margin on the sides that meet a
    neighbour, then a linear ramp up to 1."""
    w = np.ones(size, np.float32)
    if overlap <= 0:
        return w
    span = max(1, overlap - 2 * margin)
    d = np.arange(size, dtype=np.float32)
    edge = np.clip((d - margin + 0.5) / span, 1e-6, 1.0)  # ~0: a neighbour covers it
    if low:
        w = np.minimum(w, edge)
    if high:
        w = np.minimum(w, edge[::-1])
    return w


@dataclass
class TileGrid:
    """Where the tiles of one image go; tiles past its edge repeat its last row/column."""

    height: int
    width: int
    tile: int
    overlap: int
    margin: int = -1  # pixels at each inner tile edge that get no weight (default: overlap // 4)
    ys: list[int] = field(init=False)
    xs: list[int] = field(init=False)

    def __post_init__(self) -> None:
        if self.margin < 0:
            self.margin = self.overlap // 4
        if 2 * self.margin >= self.overlap and self.overlap:
            raise ValueError(f"an overlap of {self.overlap} leaves no blend past margins of {self.margin}")
        self.ys = starts(max(self.height, self.tile), self.tile, self.overlap)
        self.xs = starts(max(self.width, self.tile), self.tile, self.overlap)

    def tile_at(self, pixels: np.ndarray, y: int, x: int) -> np.ndarray:
        """The tile at (y, x), edge-padded where it reaches past the image."""
        t = self.tile
        part = pixels[y : y + t, x : x + t]
        short_y, short_x = t - part.shape[0], t - part.shape[1]
        if short_y or short_x:
            return np.pad(part, ((0, short_y), (0, short_x), (0, 0)), mode="edge")
        return part

    def tiles(self, pixels: np.ndarray, y: int, xs: list[int]) -> np.ndarray:
        """The tiles of row y at columns xs, as [N, tile, tile, C]."""
        return np.stack([self.tile_at(pixels, y, x) for x in xs])

    def positions(self, y: int, xs: list[int]) -> np.ndarray:
        """POSITION rows (top, left, height, width) for the tiles of row y at columns xs."""
        return np.array([[y, x, self.height, self.width] for x in xs], np.float32)


def _weights(
    positions: list[int], size: int, overlap: int, margin: int, length: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Each tile's ramp along one axis, and their sum over the (cropped) output axis."""
    ramps = [_ramp(size, overlap, margin, i > 0, i < len(positions) - 1) for i in range(len(positions))]
    total = np.zeros(length, np.float32)
    for p, r in zip(positions, ramps, strict=True):
        end = min(p + size, length)
        total[p:end] += r[: end - p]
    return ramps, total


class Stitcher:
    """Blends output tiles into the final image, handing back each tile row's finished rows."""

    def __init__(self, grid: TileGrid, scale: int, channels: int) -> None:
        self.grid, self.s, self.c = grid, scale, channels
        self.height, self.width = grid.height * scale, grid.width * scale
        ts, ov, mg = grid.tile * scale, grid.overlap * scale, grid.margin * scale
        self.ts = ts
        ys, xs = [y * scale for y in grid.ys], [x * scale for x in grid.xs]
        self._wy, self._wy_sum = _weights(ys, ts, ov, mg, self.height)
        self._wx, self._wx_sum = _weights(xs, ts, ov, mg, self.width)
        # Rows [_top, _top + ts) at most are pending at any time: one buffer, allocated once.
        self._acc = np.zeros((min(ts, self.height), self.width, channels), np.float32)
        self._row = {y: i for i, y in enumerate(grid.ys)}
        self._col = {x: j for j, x in enumerate(grid.xs)}
        self._top = 0  # output row of _acc[0]

    def add(self, y: int, x: int, tile: np.ndarray) -> None:
        """Blend one output tile (of the tile at input (y, x)) into the pending rows."""
        s, ts = self.s, self.ts
        y0, x0 = y * s, x * s
        rows, cols = min(ts, self.height - y0), min(ts, self.width - x0)
        wy = self._wy[self._row[y]][:rows]
        wx = self._wx[self._col[x]][:cols]
        weight = wy[:, None, None] * wx[None, :, None]
        r0 = y0 - self._top
        self._acc[r0 : r0 + rows, x0 : x0 + cols] += tile[:rows, :cols].astype(np.float32) * weight

    def finish_row(self, y: int) -> np.ndarray:
        """The output rows no later tile row touches, once every tile of row y was added."""
        ys = self.grid.ys
        i = self._row[y]
        upto = min(ys[i + 1] * self.s, self.height) if i + 1 < len(ys) else self.height
        n = upto - self._top
        if n <= 0:
            return np.zeros((0, self.width, self.c), np.uint8)
        out = np.empty((n, self.width, self.c), np.uint8)
        for r0 in range(0, n, _SLAB_ROWS):  # normalised a slab at a time: no full-strip temporaries
            r1 = min(n, r0 + _SLAB_ROWS)
            norm = self._wy_sum[self._top + r0 : self._top + r1, None, None] * self._wx_sum[None, :, None]
            block = self._acc[r0:r1] / np.maximum(norm, 1e-6)
            np.rint(block, out=block)
            np.clip(block, 0, 255, out=block)
            out[r0:r1] = block
        rest = self._acc.shape[0] - n
        for r0 in range(0, rest, n):  # shifted n rows at a time: source and target never overlap
            r1 = min(rest, r0 + n)
            self._acc[r0:r1] = self._acc[r0 + n : r1 + n]
        self._acc[rest:] = 0
        self._top = upto
        return out

    @staticmethod
    def buffer_bytes(tile: int, scale: int, width: int, channels: int) -> int:
        """The accumulator's size: one tile row of the output, float32."""
        return tile * scale * width * scale * channels * 4
