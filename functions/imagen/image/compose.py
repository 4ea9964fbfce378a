"""What a job writes, strip by strip: the model's pixels with the upload's alpha, or a cutout.

Tiled models give RGB strips; an upload with transparency keeps it beside them (scaled with
lanczos for upscale, as it is for the x1 models). background_remove's mask is small (the
model's input side); it is scaled to each strip of the image as the strip is written, so a
cutout on a colour, a crop to the subject or the matte alone never needs a full-size copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from imagen.core.errors import BadInput
from imagen.core.options import Options
from imagen.image.imaging import STRIP_ROWS

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)
SUBJECT = 128  # mask level from which a pixel counts as the subject's (crop)


@dataclass
class Output:
    """The result's size and channels, and its rows from the top."""

    width: int
    height: int
    channels: int
    strips: Iterator[np.ndarray]
    box: Box | None = None  # the crop, in the upright source's pixels


def with_alpha(
    strips: Iterator[np.ndarray], width: int, height: int, alpha: np.ndarray | None, scale: int
) -> Output:
    """A tiled model's RGB strips (the source `scale` times over), with the source's alpha."""
    if alpha is None:
        return Output(width, height, 3, strips)
    return Output(width, height, 4, _join_alpha(strips, alpha, scale))


_LANCZOS_ROWS = 4  # source rows beyond lanczos3's reach on each side of a strip's own


def _join_alpha(strips: Iterator[np.ndarray], alpha: np.ndarray, scale: int) -> Iterator[np.ndarray]:
    plane = Image.fromarray(np.ascontiguousarray(alpha), "L") if scale > 1 else None
    y = 0
    for strip in strips:
        n, width = strip.shape[:2]
        if plane is None:
            rows = alpha[y : y + n]
        else:  # lanczos on the source rows around the strip: the same rows as one whole resize
            r0 = max(0, y // scale - _LANCZOS_ROWS)
            r1 = min(plane.height, -(-(y + n) // scale) + _LANCZOS_ROWS)
            part = plane.crop((0, r0, plane.width, r1)).resize(
                (width, (r1 - r0) * scale), Image.Resampling.LANCZOS
            )
            rows = np.asarray(part, dtype=np.uint8)[y - r0 * scale : y - r0 * scale + n]
        yield np.concatenate([strip, rows[:, :, None]], axis=2)
        y += n


def _mask_rows(small: Image.Image, width: int, height: int, box: Box, y: int, n: int) -> np.ndarray:
    """Rows y..y+n of the mask scaled (bilinear) to the image, cut to the box's columns."""
    sx, sy = small.width / width, small.height / height
    src = (box[0] * sx, y * sy, box[2] * sx, (y + n) * sy)
    return np.asarray(small.resize((box[2] - box[0], n), Image.Resampling.BILINEAR, box=src), dtype=np.uint8)


def format_box(box: Box) -> str:
    """A box as the result's imagen-crop-box metadata holds it: "left,top,right,bottom"."""
    return ",".join(map(str, box))


def parse_box(text: str, width: int, height: int) -> Box | None:
    """The box format_box wrote, if it is one inside a width x height image; else None."""
    parts = text.split(",")
    if len(parts) != 4 or not all(re.fullmatch(r"[0-9]{1,9}", p.strip()) for p in parts):
        return None
    left, top, right, bottom = (int(p) for p in parts)
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        return None
    return left, top, right, bottom


def subject_box(mask: np.ndarray, width: int, height: int, margin_percent: float) -> Box:
    """The box of the mask's subject at the image's size, grown by the margin (clamped).

    Found on the mask as it is written (scaled a strip at a time), so the crop matches the cutout.
    """
    small = Image.fromarray(np.ascontiguousarray(mask), "L")
    rows: list[int] = []
    left, right = width, -1
    for y in range(0, height, STRIP_ROWS):
        n = min(STRIP_ROWS, height - y)
        inside = _mask_rows(small, width, height, (0, 0, width, height), y, n) >= SUBJECT
        hit = np.flatnonzero(inside.any(axis=1))
        if hit.size:
            rows += [y + int(hit[0]), y + int(hit[-1])]
            cols = np.flatnonzero(inside.any(axis=0))
            left, right = min(left, int(cols[0])), max(right, int(cols[-1]))
    if not rows:
        raise BadInput("imagen-crop=subject: no subject was found in the image (its mask is empty)")
    top, bottom = min(rows), max(rows)
    mx = round((right - left + 1) * margin_percent / 100)
    my = round((bottom - top + 1) * margin_percent / 100)
    return max(0, left - mx), max(0, top - my), min(width, right + 1 + mx), min(height, bottom + 1 + my)


def cutout(pixels: np.ndarray, mask: np.ndarray, opts: Options) -> Output:
    """background_remove's result: RGBA (the default), opaque on a colour, or the matte alone;
    cut to the subject's box when asked."""
    height, width = pixels.shape[:2]
    box = subject_box(mask, width, height, opts.crop_margin) if opts.crop else (0, 0, width, height)
    channels = 1 if opts.mask else 3 if opts.background is not None else 4
    out_w, out_h = box[2] - box[0], box[3] - box[1]
    strips = _cutout_strips(pixels, mask, box, opts)
    return Output(out_w, out_h, channels, strips, box if opts.crop else None)


def _cutout_strips(pixels: np.ndarray, mask: np.ndarray, box: Box, opts: Options) -> Iterator[np.ndarray]:
    height, width = pixels.shape[:2]
    small = Image.fromarray(np.ascontiguousarray(mask), "L")
    background = None if opts.background is None else np.array(opts.background, np.uint16)
    for y in range(box[1], box[3], STRIP_ROWS):
        n = min(STRIP_ROWS, box[3] - y)
        alpha = _mask_rows(small, width, height, box, y, n)
        if opts.mask:
            yield alpha[:, :, None]
            continue
        rgb = pixels[y : y + n, box[0] : box[2]]
        if background is None:
            yield np.concatenate([rgb, alpha[:, :, None]], axis=2)
            continue
        a = alpha[:, :, None].astype(np.uint16)
        mixed = (rgb.astype(np.uint16) * a + background * (255 - a) + 127) // 255
        yield mixed.astype(np.uint8)
