"""Fixed-size overlapping tiles and seamless blending, one tile row at a time.

Every tile has the same shape, so Triton's dynamic batcher can merge tiles from many
requests. Overlaps are blended with linear ramps that skip a margin at each tile edge,
where convolution border effects live; the float accumulator only spans one tile row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride tile-overlap, the last one flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    out = list(range(0, length - tile, stride))
    out.append(length - tile)
    return out


def _ramp(size: int, overlap: int, low: bool, high: bool) -> np.ndarray:
    """Per-pixel weight along one tile axis: ramps on the sides that meet a neighbour."""
    w = np.ones(size, np.float32)
    if overlap <= 0:
        return w
    margin = overlap // 4
    span = max(1, overlap - 2 * margin)
    d = np.arange(size, dtype=np.float32)
    edge = np.clip((d - margin + 0.5) / span, 1e-3, 1.0)
    if low:
        w = np.minimum(w, edge)
    if high:
        w = np.minimum(w, edge[::-1])
    return w


@dataclass
class TileGrid:
    """Where the tiles of one image go (on the image padded up to at least one tile)."""

    height: int
    width: int
    tile: int
    overlap: int

    @property
    def padded(self) -> tuple[int, int]:
        return max(self.height, self.tile), max(self.width, self.tile)

    @property
    def ys(self) -> list[int]:
        return starts(self.padded[0], self.tile, self.overlap)

    @property
    def xs(self) -> list[int]:
        return starts(self.padded[1], self.tile, self.overlap)

    def pad(self, pixels: np.ndarray) -> np.ndarray:
        ph, pw = self.padded
        if (ph, pw) == pixels.shape[:2]:
            return pixels
        return np.pad(pixels, ((0, ph - self.height), (0, pw - self.width), (0, 0)), mode="edge")

    def row(self, padded: np.ndarray, y: int) -> np.ndarray:
        """All tiles of the tile row starting at y, as [N, tile, tile, C]."""
        t = self.tile
        return np.stack([padded[y : y + t, x : x + t] for x in self.xs])

    def positions(self, y: int) -> np.ndarray:
        """POSITION rows (top, left, height, width) for the tiles of row y."""
        return np.array([[y, x, self.height, self.width] for x in self.xs], np.float32)


class Stitcher:
    """Blends output tiles row by row into the final uint8 image."""

    def __init__(self, grid: TileGrid, scale: int, channels: int) -> None:
        self.grid = grid
        self.s = scale
        ph, pw = grid.padded
        self.out = np.zeros((ph * scale, pw * scale, channels), np.uint8)
        self._acc = np.zeros((0, pw * scale, channels), np.float32)
        self._wsum = np.zeros((0, pw * scale, 1), np.float32)
        self._top = 0  # output row of _acc[0]
        self._rows_done = 0

    def add_row(self, y: int, tiles: np.ndarray) -> None:
        g, s = self.grid, self.s
        ys, xs = g.ys, g.xs
        ts, ov = g.tile * s, g.overlap * s
        i = ys.index(y)
        y0, y1 = y * s, y * s + ts
        grow = y1 - self._top - self._acc.shape[0]
        if grow > 0:
            w = self._acc.shape[1]
            self._acc = np.concatenate([self._acc, np.zeros((grow, w, self._acc.shape[2]), np.float32)])
            self._wsum = np.concatenate([self._wsum, np.zeros((grow, w, 1), np.float32)])
        wy = _ramp(ts, ov, i > 0, i < len(ys) - 1)
        for j, (x, tile) in enumerate(zip(xs, tiles, strict=False)):
            wx = _ramp(ts, ov, j > 0, j < len(xs) - 1)
            weight = (wy[:, None] * wx[None, :])[:, :, None]
            r0, c0 = y0 - self._top, x * s
            self._acc[r0 : r0 + ts, c0 : c0 + ts] += tile.astype(np.float32) * weight
            self._wsum[r0 : r0 + ts, c0 : c0 + ts] += weight
        final_to = ys[i + 1] * s if i + 1 < len(ys) else y1
        self._flush(final_to)

    def _flush(self, upto: int) -> None:
        n = upto - self._top
        if n <= 0:
            return
        block = self._acc[:n] / np.maximum(self._wsum[:n], 1e-6)
        self.out[self._top : upto] = np.clip(np.rint(block), 0, 255).astype(np.uint8)
        self._acc = self._acc[n:]
        self._wsum = self._wsum[n:]
        self._top = upto

    def result(self) -> np.ndarray:
        """The stitched image, cropped back to the unpadded size times the scale."""
        return self.out[: self.grid.height * self.s, : self.grid.width * self.s]
