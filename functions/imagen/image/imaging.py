"""Decoding uploads safely into RGB pixels, and encoding results.

Decoding is two steps so that memory can be decided before any pixel exists: `probe` reads
the header (size, mode, orientation), `load` decodes into one uint8 RGB array, converting
colour a strip at a time, and applies the EXIF orientation as a view (no second copy).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, UnidentifiedImageError

from imagen.core.errors import BadInput, NotAnImage
from imagen.core.formats import INPUT_TYPES
from imagen.image import decoder_limits

# Formats a camera, phone or browser produces; anything else is refused by name.
ACCEPTED_FORMATS = frozenset(INPUT_TYPES)
_SRGB = ImageCms.createProfile("sRGB")

Image.MAX_IMAGE_PIXELS = None  # our own limit is checked before any pixel is decoded
pillow_heif.register_heif_opener()  # HEIC/HEIF from phones; AVIF is built into Pillow


@dataclass(frozen=True)
class Header:
    """What the header says, before any pixel is decoded (width and height as displayed)."""

    width: int
    height: int
    format: str
    mode: str  # Pillow's mode as stored: decides the decoder's bytes per pixel
    orientation: int  # EXIF orientation, 1..8 (5..8 swap width and height)
    frames: int | None
    progressive: bool = False  # a progressive JPEG: its decoder holds every DCT coefficient
    alpha: bool = False  # it has transparency (an alpha channel, or a transparent colour)
    jpeg_quality: int | None = None  # a JPEG's quality, estimated from its quantisation tables
    scans: int = 1  # a JPEG's scans (the decoder passes over every pixel once per scan); 1 otherwise

    @property
    def decoder_bytes_per_pixel(self) -> int:
        """Bytes per pixel the decoder holds besides our RGB copy: Pillow's frame, plus the
        codec's own buffers where it keeps them (measured at 12 MP: WebP keeps a canvas of its
        own, libheif its image, a progressive JPEG its coefficients)."""
        extra = _FORMAT_BYTES.get(self.format, 0)
        if self.format in ("JPEG", "MPO") and self.progressive:
            extra = 6
        return _MODE_BYTES.get(self.mode, 4) + extra


# Pillow's storage per pixel by mode: 1 for 8-bit single-band, 2 for 16-bit, 4 otherwise
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_FORMAT_BYTES = {"WEBP": 8, "AVIF": 4, "HEIF": 4}


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # uint8 [H, W, 3], sRGB, upright (may be a rotated view)
    source_format: str
    frames: int | None  # None: not counted (TIFF) or a later frame unreadable
    alpha: np.ndarray | None = None  # uint8 [H, W], upright, when kept (the colour is then straight)


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


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _to_rgb(im: Image.Image, top: int, keep_alpha: bool) -> tuple[Image.Image, Image.Image | None]:
    """An RGB image of `im` (a strip) and its alpha when kept (the colour straight, as stored);
    otherwise alpha is flattened on white. `top` is 16-bit data's maximum."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.uint32)
        clear = im.info.get("transparency")  # a 16-bit grey's transparent value (tRNS)
        grey = Image.fromarray((arr * 255 // max(top, 1)).astype(np.uint8), "L")
        if isinstance(clear, int):
            alpha = Image.fromarray(np.where(arr == clear, 0, 255).astype(np.uint8), "L")
            if keep_alpha:
                return grey.convert("RGB"), alpha
            white = Image.new("L", grey.size, 255)
            return Image.composite(grey, white, alpha).convert("RGB"), None
        im = grey
    if im.mode == "P":
        im = im.convert("RGBA")
    if _has_alpha(im):
        rgba = im.convert("RGBA")
        if keep_alpha:
            return rgba.convert("RGB"), rgba.getchannel("A")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), None
    return im.convert("RGB"), None


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


def probe(data: bytes, max_bytes: int, max_pixels: int) -> tuple[Image.Image, Header]:
    """The opened image and its header, validated; no pixel is decoded yet. Work a file could ask
    of the decoder beyond its size and pixels (JPEG scans, TIFF strips, ...) is capped first.

    Every error the decoder raises is about the file (Pillow reads only these bytes), so each
    one is BadInput with its reason: a file never fails as if a service were down.
    """
    if not data:
        raise BadInput("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise BadInput(f"the file is {len(data)} bytes, over the limit of {max_bytes} bytes")
    scans = decoder_limits.check_bytes(data)  # JPEG scans, segments, TIFF strips, PNG chunks
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise NotAnImage(f"not an image: the file looks like {_sniff(data)}") from exc
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
    decoder_limits.check_tiles(fmt, len(im.tile))  # any format: Pillow loops over its tiles
    decoder_limits.check_icc(im.info.get("icc_profile"))  # before LittleCMS parses it in `load`
    try:
        frames = _frames(im)  # animated images: the first frame is the one processed
        orientation = int(im.getexif().get(0x0112, 1) or 1)
    except Exception as exc:
        raise BadInput(f"the {fmt} data is truncated or corrupt ({exc})") from exc
    orientation = orientation if 1 <= orientation <= 8 else 1
    if orientation >= 5:
        width, height = height, width
    progressive = bool(im.info.get("progressive") or im.info.get("progression"))
    quality = jpeg_quality(im) if fmt in ("JPEG", "MPO") else None
    alpha = _has_alpha(im)
    return im, Header(width, height, fmt, im.mode, orientation, frames, progressive, alpha, quality, scans)


# The IJG's standard luminance quantisation table (quality 50); a file's table is it scaled.
_STD_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    np.float64,
)  # fmt: skip


def jpeg_quality(im: Image.Image) -> int | None:
    """The IJG quality (1..100) whose scaling of the standard table is nearest the file's own
    luminance table; None when the file carries no table."""
    tables = getattr(im, "quantization", None) or {}
    if 0 not in tables:
        return None
    table = np.asarray(tables[0], np.float64)
    if table.shape != _STD_LUMA.shape:
        return None
    kept = table < 255  # entries clamped at 255 no longer follow the scale
    scale = 100 * float(np.median(table[kept] / _STD_LUMA[kept])) if kept.any() else 5000.0
    quality = 5000 / scale if scale > 100 else (200 - scale) / 2
    return int(round(min(100.0, max(1.0, quality))))


STRIP_ROWS = 256  # rows converted at a time: colour conversion never copies the whole image
BLOCK_PIXELS = 1 << 20  # and never more than this many pixels (a 50,000,000x1 strip goes in blocks)


def load(im: Image.Image, header: Header, keep_alpha: bool = False) -> Decoded:
    """Decode the probed image into upright sRGB pixels: one uint8 array, then views.

    With `keep_alpha`, an image with transparency also gives its alpha plane (one more byte a
    pixel) and straight colour; otherwise its alpha is flattened on white.
    """
    fmt = header.format
    width, height = im.size
    out = np.empty((height, width, 3), np.uint8)  # the one full-size array, before Pillow's frame
    alpha = np.full((height, width), 255, np.uint8) if keep_alpha and header.alpha else None
    try:
        im.load()
    except MemoryError:
        raise
    except Exception as exc:
        raise BadInput(f"the {fmt} data is truncated or corrupt ({exc})") from exc
    try:
        top = 255
        if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            high = im.getextrema()[1]
            top = 65535 if float(high) > 255 else 255  # type: ignore[arg-type]
        transform = _icc_transform(im.info.get("icc_profile"))
        cols = min(width, BLOCK_PIXELS)
        rows = max(1, min(STRIP_ROWS, BLOCK_PIXELS // cols))
        for y in range(0, height, rows):
            for x in range(0, width, cols):
                box = (x, y, min(x + cols, width), min(y + rows, height))
                block, block_alpha = _to_rgb(im.crop(box), top, alpha is not None)
                if transform is not None:
                    block = ImageCms.applyTransform(block, transform) or block
                out[box[1] : box[3], box[0] : box[2]] = np.asarray(block, dtype=np.uint8)
                if alpha is not None and block_alpha is not None:
                    alpha[box[1] : box[3], box[0] : box[2]] = np.asarray(block_alpha, dtype=np.uint8)
    except (BadInput, MemoryError):
        raise
    except Exception as exc:
        raise BadInput(f"the {fmt} image cannot be converted to RGB ({type(exc).__name__}: {exc})") from exc
    finally:
        im.close()  # Pillow's copy of the frame goes now: only `out` stays
    upright_alpha = None if alpha is None else orient(alpha, header.orientation)
    return Decoded(orient(out, header.orientation), fmt, header.frames, upright_alpha)


def _icc_transform(icc: bytes | None) -> ImageCms.ImageCmsTransform | None:
    """The embedded profile to sRGB, or None (no profile, or one that cannot be read)."""
    if not icc:
        return None
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.buildTransform(src, _SRGB, "RGB", "RGB")
    except (ImageCms.PyCMSError, OSError):
        return None  # an unreadable profile: keep the pixels as they are


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The EXIF orientation applied as a numpy view (as Pillow's exif_transpose would)."""
    views = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return views.get(orientation, views[1])(pixels)


def shrink(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """A small uint8 RGB copy of a large image, reduced a strip at a time, then bilinear."""
    h, w = pixels.shape[:2]
    kx, ky = max(1, w // width // 2), max(1, h // height // 2)  # box-reduce to ~2x the target
    rows = max(ky, (STRIP_ROWS // ky) * ky)
    parts = []
    for y in range(0, h, rows):
        strip = Image.fromarray(np.ascontiguousarray(pixels[y : y + rows]), "RGB")
        parts.append(np.asarray(strip.reduce((kx, ky)) if kx * ky > 1 else strip, dtype=np.uint8))
    reduced = np.concatenate(parts)
    return np.asarray(
        Image.fromarray(reduced, "RGB").resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8
    )
