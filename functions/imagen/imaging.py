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
    frames: int


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


def decode(data: bytes, max_bytes: int, max_pixels: int) -> Decoded:
    """Validated, upright sRGB pixels of an upload, or BadInput with a readable reason."""
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
    if im.format not in ACCEPTED_FORMATS:
        raise BadInput(f"unsupported image format {im.format}")
    width, height = im.size
    if width * height > max_pixels:
        raise BadInput(
            f"the image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels} pixels"
        )
    frames = int(getattr(im, "n_frames", 1))
    try:
        im.seek(0)  # animated images: the first frame is the one processed
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"the {im.format} data is truncated or corrupt ({exc})") from exc
    icc = im.info.get("icc_profile")
    fmt = str(im.format or "")
    upright: Image.Image = ImageOps.exif_transpose(im) or im
    rgb = _to_rgb(upright)
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(rgb, src, _SRGB, outputMode="RGB") or rgb
        except (ImageCms.PyCMSError, OSError):
            pass  # an unreadable profile: keep the pixels as they are
    return Decoded(np.asarray(rgb, dtype=np.uint8), fmt, frames)


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    """JPEG (quality 92) for RGB results, PNG (our fast writer) for RGBA."""
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
