"""Previews and 1:1 crops made here at a bounded size: never a whole large image to the page, and
never a whole large image decoded into this process.

libvips reads the file from disk with shrink-on-load: a JPEG decodes at 1/2 to 1/8 scale,
PNG, TIFF and WebP stream through in strips, so memory follows the image's width, not its area
(measured, a preview and a crop in a process of its own, 23 MiB before them: a 192 MP JPEG peaks
at 68 MiB, a 48 MP RGBA PNG at 112 MiB and a 192 MP PNG at 114 MiB, whose pixels are 192 and
576 MB). HEIF and AVIF have no scaled decoder: they decode whole, a source up to the
pipeline's MAX_INPUT_PIXELS, an AVIF result up to MAX_OUTPUT_PIXELS. A crop reads the lines down
to its region and no further, and is at most CROP_MAX_SIDE a side.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from . import logs

PREVIEW_MAX_SIDE = 1600  # px: the long side of any preview the page gets
PREVIEW_MIN_SIDE = 64
CROP_MAX_SIDE = 512  # px: a 1:1 crop is at most this square
MAX_HEADER_PIXELS = 1 << 30  # a file declaring more than ~1.07 gigapixels is not opened at all
MAX_SIDE = 1 << 17  # nor one wider or taller than this (strip memory grows with the width)
_AT_ONCE = threading.BoundedSemaphore(2)  # decodes side by side: the memory bound is per decode


class PreviewError(Exception):
    """The file cannot be previewed (not an image, or over the bounds); says why."""


def configure() -> None:
    """libvips for this process: no operation cache, one worker thread per decode (measured:
    a second thread per decode adds ~40 MiB to a large PNG's peak)."""
    pyvips.cache_set_max(0)
    pyvips.concurrency_set(1)


@dataclass(frozen=True)
class Header:
    """What the file's header says, upright (EXIF orientation applied to the size)."""

    width: int
    height: int
    alpha: bool
    orientation: int = 1

    @property
    def stored(self) -> tuple[int, int]:
        """The size as stored (before the orientation turns it)."""
        return (self.height, self.width) if self.orientation >= 5 else (self.width, self.height)


def _open(path: Path) -> Any:
    try:
        image = pyvips.Image.new_from_file(str(path), access="sequential")
    except pyvips.Error as exc:
        raise PreviewError("not an image the console can preview (libvips does not read it)") from exc
    if image.width * image.height > MAX_HEADER_PIXELS or max(image.width, image.height) > MAX_SIDE:
        raise PreviewError(f"{image.width}x{image.height} is over the console's bound for a preview")
    return image


def _first_line(exc: pyvips.Error) -> str:
    return str(exc.message).strip().splitlines()[0] if exc.message else "unknown error"


def _orientation(image: Any) -> int:
    if image.get_typeof("orientation") == 0:
        return 1
    value = int(image.get("orientation"))
    return value if 1 <= value <= 8 else 1


def header(path: Path) -> Header:
    image = _open(path)
    orientation = _orientation(image)
    width, height = image.width, image.height
    if orientation >= 5:
        width, height = height, width
    return Header(width, height, bool(image.hasalpha()), orientation)


def preview(path: Path, max_side: int = PREVIEW_MAX_SIDE) -> tuple[bytes, str]:
    """The image upright, at most `max_side` px on its long side, and its content type: a JPEG,
    or with alpha a WebP at its least effort (a WebP encoder at its default holds ~60 MiB more)."""
    side = max(PREVIEW_MIN_SIDE, min(int(max_side), PREVIEW_MAX_SIDE))
    head = header(path)  # checks the bounds before any pixel is decoded
    started = time.perf_counter()
    with _AT_ONCE:
        try:
            thumb = pyvips.Image.thumbnail(str(path), side, height=side, size="down")
            if thumb.hasalpha():
                out: bytes = thumb.webpsave_buffer(Q=85, effort=0, keep="none")
                kind = "image/webp"
            else:
                out = thumb.jpegsave_buffer(Q=85, keep="none")
                kind = "image/jpeg"
        except pyvips.Error as exc:
            raise PreviewError(f"the image could not be decoded ({_first_line(exc)})") from exc
    logs.preview_made(path.name, "preview", head.width, head.height, (time.perf_counter() - started) * 1000)
    return out, kind


def clamp_region(head: Header, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
    """A crop request kept inside the image and under CROP_MAX_SIDE a side."""
    w = max(1, min(int(w), CROP_MAX_SIDE, head.width))
    h = max(1, min(int(h), CROP_MAX_SIDE, head.height))
    x = max(0, min(int(x), head.width - w))
    y = max(0, min(int(y), head.height - h))
    return x, y, w, h


def stored_region(
    orientation: int, stored: tuple[int, int], region: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    """Where an upright region lies in the pixels as stored, for each EXIF orientation."""
    sw, sh = stored
    x, y, w, h = region
    return {
        1: (x, y, w, h),
        2: (sw - x - w, y, w, h),
        3: (sw - x - w, sh - y - h, w, h),
        4: (x, sh - y - h, w, h),
        5: (y, x, h, w),
        6: (y, sh - x - w, h, w),
        7: (sw - y - h, sh - x - w, h, w),
        8: (sw - y - h, x, h, w),
    }[orientation]


def crop(path: Path, x: int, y: int, w: int, h: int) -> tuple[bytes, tuple[int, int, int, int]]:
    """A PNG of an upright region at 1:1 (clamped: at most CROP_MAX_SIDE a side), and the region."""
    head = header(path)
    region = clamp_region(head, x, y, w, h)
    started = time.perf_counter()
    with _AT_ONCE:
        try:
            image = _open(path)
            piece = image.crop(*stored_region(head.orientation, head.stored, region))
            if head.orientation != 1:  # turn the small piece, never the whole image
                piece = piece.copy_memory()
                piece.set_type(pyvips.GValue.gint_type, "orientation", head.orientation)
                piece = piece.autorot()
            out: bytes = piece.pngsave_buffer(compression=1, keep="none")
        except pyvips.Error as exc:
            raise PreviewError(f"the image could not be decoded ({_first_line(exc)})") from exc
    logs.preview_made(path.name, "crop", region[2], region[3], (time.perf_counter() - started) * 1000)
    return out, region
