"""The PNG writer: files any decoder reads back to the same pixels, at a size close to Pillow's."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagen.image import png
from tools import images

SAMPLE = sorted((Path(__file__).parents[2] / "samples").glob("*.jpg"))[0]


def decoded(data: bytes) -> tuple[str, np.ndarray]:
    Image.open(io.BytesIO(data)).verify()  # chunk CRCs and structure
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.mode, np.asarray(im)


def cutout(width: int, height: int) -> np.ndarray:
    """A real photo with a soft alpha edge, like background_remove's results."""
    with Image.open(SAMPLE) as im:
        rgb = np.asarray(im.convert("RGB").resize((width, height)))
    yy, xx = np.mgrid[0:height, 0:width]
    alpha = np.clip(255 - np.hypot(xx - width / 2, yy - height / 2) * 2, 0, 255).astype(np.uint8)
    return np.concatenate([rgb, alpha[:, :, None]], axis=2)


@pytest.mark.parametrize(
    ("shape", "mode"),
    [((1, 1, 4), "RGBA"), ((3, 5, 4), "RGBA"), ((17, 33, 3), "RGB"), ((9, 7, 1), "L"), ((4, 6, 2), "LA")],
)
def test_random_pixels_round_trip_exactly(shape: tuple[int, int, int], mode: str) -> None:
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    if shape[0] > 1:
        pixels[1] = pixels[0]  # a row equal to the one above filters to zeros
    got_mode, got = decoded(png.encode(pixels))
    assert got_mode == mode
    assert np.array_equal(got.reshape(shape), pixels)


def test_a_cutout_round_trips_and_compresses_like_pillow() -> None:
    pixels = cutout(640, 480)
    data = images.encode(pixels, "PNG")
    mode, got = decoded(data)
    assert mode == "RGBA" and np.array_equal(got, pixels)
    pillow = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(pillow, "PNG", compress_level=1)
    assert len(data) < pixels.nbytes / 2  # it does compress
    assert len(data) < 1.35 * pillow.tell()  # and not much worse than Pillow's fastest level


def test_the_stream_is_plain_zlib_with_one_up_filter_byte_per_row() -> None:
    pixels = cutout(64, 48)
    data = png.encode(pixels)
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    raw = zlib.decompress(data[idat + 4 : idat + 4 + length])
    rows = np.frombuffer(raw, np.uint8).reshape(48, 64 * 4 + 1)
    assert set(rows[:, 0].tolist()) == {2}
    assert b"sRGB" in data[: data.index(b"IDAT")]


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4, 5), np.uint8), np.zeros((4, 4, 4), np.uint16), np.zeros((4, 4), np.uint8)]
)
def test_refuses_what_it_cannot_write(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected uint8"):
        png.encode(bad)
