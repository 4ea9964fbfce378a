"""Decoding uploads safely into RGB pixels, and encoding results."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from . import png
from .errors import BadInput

# Formats a camera, phone or browser produces; anything else is refused by name.
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "HEIF", "AVIF"}
_SRGB = ImageCms.createProfile("sRGB")

Image.MAX_IMAGE_PIXELS = None  # our own limit is checked before any pixel is decoded
pillow_heif.register_heif_opener()  # HEIC/HEIF from phones; AVIF is built into Pillow


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # uint8 [H, W, 3], sRGB, upright
    source_format: str
    frames: int | None  # None: not counted (TIFF) or a later frame unreadable


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip()
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096]):
        return "an SVG drawing"
    if head[:1] == b"<":
        return "markup text"
    try:
        data[:4096].decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unrecognised binary data"


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.uint32)
        top = 65535 if arr.max() > 255 else 255
        im = Image.fromarray((arr * 255 // top).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "RGB" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


# Formats whose frame count is one cheap pass; TIFF counts by walking every IFD (quadratic in
# Pillow: 50k IFDs take minutes), so only its first frame is read and its count is not asked.
_COUNTED_FRAMES = {"GIF", "WEBP", "PNG", "AVIF", "HEIF"}


def _frames(im: Image.Image) -> int | None:
    """How many frames the image has, where that is cheap and readable; None otherwise."""
    try:
        if not getattr(im, "is_animated", False):
            return 1
        return int(getattr(im, "n_frames", 1)) if im.format in _COUNTED_FRAMES else None
    except Exception:  # a broken later frame: the first one is what we use
        return None
    finally:
        im.seek(0)


def decode(data: bytes, max_bytes: int, max_pixels: int) -> Decoded:
    """Validated, upright sRGB pixels of an upload, or BadInput with a readable reason.

    Every error the decoder raises is about the file (Pillow reads only these bytes), so each
    one is BadInput with its reason: a file never fails as if a service were down.
    """
    if not data:
        raise BadInput("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise BadInput(f"the file is {len(data)} bytes, over the limit of {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise BadInput(f"not an image: the file looks like {_sniff(data)}") from exc
    except Exception as exc:  # e.g. a PNG iCCP or zTXt chunk that inflates past Pillow's limit
        raise BadInput(f"the image header cannot be read ({type(exc).__name__}: {exc})") from exc
    if im.format not in ACCEPTED_FORMATS:
        raise BadInput(f"unsupported image format {im.format}")
    width, height = im.size
    if width * height > max_pixels:
        raise BadInput(
            f"the image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels} pixels"
        )
    fmt = str(im.format or "")
    try:
        frames = _frames(im)  # animated images: the first frame is the one processed
        im.load()
    except Exception as exc:
        raise BadInput(f"the {fmt} data is truncated or corrupt ({exc})") from exc
    try:
        icc = im.info.get("icc_profile")
        upright: Image.Image = ImageOps.exif_transpose(im) or im
        rgb = _to_rgb(upright)
    except Exception as exc:
        raise BadInput(f"the {fmt} image cannot be converted to RGB ({type(exc).__name__}: {exc})") from exc
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(rgb, src, _SRGB, outputMode="RGB") or rgb
        except (ImageCms.PyCMSError, OSError):
            pass  # an unreadable profile: keep the pixels as they are
    return Decoded(np.asarray(rgb, dtype=np.uint8), fmt, frames)


JPEG_MAX_SIDE = 65_500  # the largest side a JPEG can hold


def check_result(width: int, height: int, fmt: str) -> None:
    """BadInput when the format cannot hold a result of this size (checked before inference)."""
    if fmt == "JPEG" and max(width, height) > JPEG_MAX_SIDE:
        raise BadInput(
            f"the result would be {width}x{height}; a JPEG side cannot exceed {JPEG_MAX_SIDE} pixels"
        )


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    """JPEG (quality 92) for RGB results, PNG (our fast writer) for RGBA."""
    height, width = pixels.shape[:2]
    check_result(width, height, fmt)
    if fmt != "JPEG":
        return png.encode(pixels)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=92, optimize=False)
    return buf.getvalue()


def resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a uint8 HxWxC (C = 1 or 3) array."""
    if pixels.shape[2] == 1:
        img = Image.fromarray(pixels[:, :, 0], "L").resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)[:, :, None]
    return np.asarray(
        Image.fromarray(pixels, "RGB").resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8
    )
