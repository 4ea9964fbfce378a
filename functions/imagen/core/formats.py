"""The result formats: what each can hold and what its encoder costs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """One result format, as the encoders write it."""

    name: str  # Pillow's and our name: JPEG, PNG, WEBP, AVIF
    option: str  # the value of imagen-format
    extension: str
    content_type: str
    max_side: int
    lossy: bool
    alpha: bool
    # Bytes per output pixel an encoder that holds the whole image keeps (libwebp's picture,
    # libheif's image and aom's frames; measured on a 12 MP photo through our VipsEncoder:
    # WebP 10.3, AVIF 28.0 for RGB); 0 for the streaming ones.
    whole_image_bytes_per_pixel: int = 0
    # Seconds per output megapixel to encode on this CPU, doubled (measured at 12 MP: JPEG 0.007,
    # PNG 0.008, WebP 0.10, AVIF 0.5); the time plan's encoding term.
    encode_s_per_mp: float = 0.02


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("JPEG", "jpeg", ".jpg", "image/jpeg", 65_500, lossy=True, alpha=False),
        Format("PNG", "png", ".png", "image/png", 2**31 - 1, lossy=False, alpha=True, encode_s_per_mp=0.03),
        Format(
            "WEBP",
            "webp",
            ".webp",
            "image/webp",
            16_383,
            True,
            True,
            whole_image_bytes_per_pixel=12,
            encode_s_per_mp=0.25,
        ),
        Format(
            "AVIF",
            "avif",
            ".avif",
            "image/avif",
            16_384,
            True,
            True,
            whole_image_bytes_per_pixel=32,
            encode_s_per_mp=1.0,
        ),
    )
}
BY_OPTION = {f.option: f for f in FORMATS.values()} | {"jpg": FORMATS["JPEG"]}
DEFAULT_QUALITY = {"JPEG": 92, "WEBP": 85, "AVIF": 60}

# The formats imagen decodes, by Pillow's name, and the Content-Type an upload is stored with
# (sniffed from its bytes, never the one a client declares).
INPUT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a camera's JPEG with a second frame
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
}
# What a signed upload URL may be asked for: those types, and HEIC as phones name it.
UPLOAD_TYPES = frozenset(INPUT_TYPES.values()) | {"image/heic"}
