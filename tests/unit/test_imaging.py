"""Decoding uploads: what is accepted, what fails with which reason."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagen.core.errors import BadInput
from imagen.image import imaging
from tests import hostile
from tools import images

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 4_000_000}


def encoded(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(w: int = 64, h: int = 48) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], axis=2).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, this is not a photo\n", "looks like text"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
    ],
)
def test_not_images(data: bytes, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        images.decode(data, **LIMITS)


def test_truncated_jpeg() -> None:
    data = encoded(photo(256, 256), "JPEG", quality=90)
    with pytest.raises(BadInput, match="truncated or corrupt"):
        images.decode(data[: len(data) // 2], **LIMITS)


def test_limits() -> None:
    with pytest.raises(BadInput, match="over the limit of 100 bytes"):
        images.decode(encoded(photo(), "PNG"), max_bytes=100, max_pixels=10**6)
    big = encoded(Image.new("L", (3000, 3000)), "PNG")  # small on disk, 9 MP
    with pytest.raises(BadInput, match="3000x3000 = 9000000 pixels"):
        images.decode(big, **LIMITS)


@pytest.mark.parametrize(
    "make",
    [
        lambda: encoded(photo(), "JPEG", quality=90, progressive=True),
        lambda: encoded(photo().convert("CMYK"), "JPEG"),
        lambda: encoded(photo().convert("L"), "PNG"),
        lambda: encoded(Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16)), "PNG"),
        lambda: encoded(photo(), "WEBP"),
    ],
    ids=["progressive-jpeg", "cmyk-jpeg", "grayscale-png", "16bit-png", "webp"],
)
def test_accepted_variants_decode_to_rgb(make: object) -> None:
    out = images.decode(make(), **LIMITS)  # type: ignore[operator]
    assert out.pixels.shape == (48, 64, 3)
    assert out.pixels.dtype == np.uint8
    assert out.pixels.std() > 10  # real content came through


def test_palette_with_transparency_is_flattened_on_white() -> None:
    im = Image.new("P", (8, 8), 0)
    im.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    im.info["transparency"] = 0
    out = images.decode(encoded(im, "PNG", transparency=0), **LIMITS)
    assert out.pixels[0, 0].tolist() == [255, 255, 255]


def test_exif_rotation_is_applied() -> None:
    im = photo(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = images.decode(encoded(im, "JPEG", exif=exif.tobytes()), **LIMITS)
    assert out.pixels.shape == (64, 48, 3)


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out = images.decode(data, **LIMITS)
    assert out.frames == 2
    assert out.pixels[0, 0, 0] > 200 and out.pixels[0, 0, 1] < 50


def test_encode_round_trip() -> None:
    rgb = np.asarray(photo())
    assert Image.open(io.BytesIO(images.encode(rgb, "JPEG"))).format == "JPEG"
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 128, np.uint8)], axis=2)
    back = Image.open(io.BytesIO(images.encode(rgba, "PNG")))
    assert back.mode == "RGBA" and np.asarray(back)[0, 0, 3] == 128


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (hostile.png_iccp_over_limit, "Decompressed data too large"),
        (hostile.png_many_ztxt, "Too much memory used in text chunks"),
    ],
)
def test_decoder_errors_are_bad_input(case: Any, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        images.decode(case(), **LIMITS)


@pytest.mark.parametrize(
    "case", [hostile.tiff_broken_second_ifd, hostile.gif_truncated_second_frame, hostile.tiff_many_ifds]
)
def test_a_broken_or_endless_later_frame_leaves_the_first(case: Any) -> None:
    out = images.decode(case(), **LIMITS)
    assert out.frames is None  # not counted: only the first frame is read
    assert out.pixels.size > 0


def test_a_result_wider_than_jpeg_allows_is_bad_input() -> None:
    with pytest.raises(BadInput, match="a JPEG side cannot exceed 65500 pixels"):
        images.check_result(65_600, 4, "JPEG")
    images.check_result(65_600, 4, "PNG")  # PNG holds it


@pytest.mark.parametrize("quality", [15, 50, 75, 92])
def test_jpeg_quality_is_read_from_the_quantisation_tables(quality: int) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 30)).save(buf, "JPEG", quality=quality)
    _, header = imaging.probe(buf.getvalue(), 10**7, 10**8)
    assert header.jpeg_quality is not None and abs(header.jpeg_quality - quality) <= 1


def test_the_noise_level_follows_the_compression_and_the_pixels() -> None:
    from imagen.inference.runner import image_noise

    rng = np.random.default_rng(3)
    smooth = np.tile(np.linspace(0, 255, 300, dtype=np.float32), (200, 1))[:, :, None].repeat(3, 2)
    clean = smooth.astype(np.uint8)
    noisy = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    assert image_noise(clean)[0, 0] == 0  # a clean photo is left alone
    assert 9 / 255 < image_noise(noisy)[0, 0] < 14 / 255  # per-channel sigma 12
    assert image_noise(clean, 15)[0, 0] == pytest.approx(20 / 255)  # heavy JPEG: strong denoise
    assert image_noise(clean, 95)[0, 0] == 0


def test_a_16_bit_grey_with_a_transparent_value_keeps_its_alpha() -> None:
    arr = np.zeros((8, 10), np.uint16)
    arr[:, 5:] = 40000
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", transparency=0)
    im, header = imaging.probe(buf.getvalue(), 10**7, 10**7)
    assert header.alpha
    kept = imaging.load(im, header, keep_alpha=True)
    assert kept.alpha is not None and kept.alpha[0].tolist() == [0] * 5 + [255] * 5
    im, header = imaging.probe(buf.getvalue(), 10**7, 10**7)
    flat = imaging.load(im, header)  # not kept: the clear part on white
    assert flat.alpha is None and flat.pixels[0, :5].min() == 255
