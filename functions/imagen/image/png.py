"""PNG files for results with alpha, streamed: rows Up-filtered in numpy, deflated by ISA-L.

Pillow's encoder at its fastest level chooses a filter row by row and deflates with zlib; on a
640x480 RGBA result it takes ~22 ms, on a 12-megapixel one ~0.65 s. This writer is several
times faster for files of about the same size (figures in docs/benchmarks.md).
Pixels are sRGB (imaging.load converts them), which the sRGB chunk says.
"""

from __future__ import annotations

import io
import struct
from typing import Protocol

import numpy as np
from isal import isal_zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA
_FILTER_UP = 2
_SRGB_PERCEPTUAL = b"\x00"


def chunk(kind: bytes, body: bytes) -> list[bytes]:
    """Length, type, data, CRC: the CRC runs on over the data, which is never copied to get it."""
    crc = isal_zlib.crc32(body, isal_zlib.crc32(kind))
    return [struct.pack(">I", len(body)), kind, body, struct.pack(">I", crc)]


def filtered_rows(pixels: np.ndarray, above: np.ndarray | None = None) -> np.ndarray:
    """Scanlines with the Up filter: a filter-type byte, then each byte minus the one above.

    `above` is the row before the first (None at the top of the image: zeros).
    """
    height, width, channels = pixels.shape
    flat = pixels.reshape(height, width * channels)
    rows = np.empty((height, width * channels + 1), np.uint8)
    rows[:, 0] = _FILTER_UP
    if above is None:
        rows[0, 1:] = flat[0]
    else:
        np.subtract(flat[0], above.reshape(-1), out=rows[0, 1:])
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])  # uint8 wraps modulo 256, as PNG wants
    return rows


def head(width: int, height: int, channels: int) -> bytes:
    """Signature, IHDR (8-bit, 1..4 channels) and the sRGB chunk: everything before the pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    return b"".join([SIGNATURE, *chunk(b"IHDR", header), *chunk(b"sRGB", _SRGB_PERCEPTUAL)])


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class PngWriter:
    """Streams a PNG: rows in, compressed IDAT chunks out to `sink` as they fill.

    Holds one input strip, its filtered copy and the deflate state: memory follows the width.
    """

    def __init__(self, sink: Sink, width: int, height: int, channels: int, level: int = 1) -> None:
        if channels not in _COLOR_TYPE:
            raise ValueError(f"PNG holds 1..4 channels, not {channels}")
        self.sink, self.width, self.height, self.channels = sink, width, height, channels
        self.rows = 0
        self._last: np.ndarray | None = None  # the previous strip's last row, for the Up filter
        self._deflate = isal_zlib.compressobj(level)
        self._emit([head(width, height, channels)])

    def _emit(self, parts: list[bytes]) -> None:
        for part in parts:
            self.sink.write(part)

    def write(self, strip: np.ndarray) -> None:
        """Append rows (uint8 [n, width, channels])."""
        if strip.dtype != np.uint8 or strip.ndim != 3 or strip.shape[1:] != (self.width, self.channels):
            raise ValueError(
                f"expected uint8 [n, {self.width}, {self.channels}], got {strip.dtype} {strip.shape}"
            )
        if not len(strip):
            return
        strip = np.ascontiguousarray(strip)
        rows = filtered_rows(strip, self._last)
        self._last = strip[-1].copy()
        self.rows += len(strip)
        data = self._deflate.compress(rows.data)
        if data:
            self._emit(chunk(b"IDAT", data))

    def close(self) -> None:
        """Finish the stream (every row must have been written)."""
        if self.rows != self.height:
            raise ValueError(f"PNG got {self.rows} rows of {self.height}")
        self._emit([*chunk(b"IDAT", self._deflate.flush()), *chunk(b"IEND", b"")])


def encode(pixels: np.ndarray, level: int = 1) -> bytes:
    """An 8-bit PNG of a uint8 [H, W, C] array, C = 1..4 (grey, grey+alpha, RGB, RGBA)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in _COLOR_TYPE:
        raise ValueError(f"expected uint8 [H, W, 1..4], got {pixels.dtype} {pixels.shape}")
    height, width, channels = pixels.shape
    buf = io.BytesIO()
    writer = PngWriter(buf, width, height, channels, level)
    writer.write(pixels)
    writer.close()
    return buf.getvalue()
