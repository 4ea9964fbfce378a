"""Streaming encoders: strips in, a whole file out; errors surface, aborts leave nothing running."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from imagen.image import encoding


def picture(h: int = 700, w: int = 900) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], axis=2).astype(np.uint8)


def encode(pixels: np.ndarray, fmt: str, out_size: tuple[int, int] | None = None, strip: int = 97) -> bytes:
    buf = io.BytesIO()
    h, w, c = pixels.shape
    enc = encoding.open_encoder(buf, fmt, w, h, c, out_size)
    for y in range(0, h, strip):
        enc.write(pixels[y : y + strip])
    enc.close()
    return buf.getvalue()


def test_a_jpeg_streamed_in_strips_is_the_picture() -> None:
    pixels = picture()
    back = np.asarray(Image.open(io.BytesIO(encode(pixels, "JPEG"))).convert("RGB"), np.int16)
    assert back.shape == pixels.shape
    assert np.abs(back - pixels).mean() < 2.0  # quality 92


def test_a_png_streamed_in_strips_is_exact() -> None:
    rgba = np.concatenate([picture(), np.full((700, 900, 1), 77, np.uint8)], axis=2)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode(rgba, "PNG")))), rgba)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_resized_on_the_way_out(fmt: str) -> None:
    img = Image.open(io.BytesIO(encode(picture(), fmt, (450, 350))))
    assert img.size == (450, 350)


def test_a_failing_sink_surfaces_and_stops_the_encoder() -> None:
    class Broken:
        def write(self, data: bytes, /) -> int:
            raise OSError("the upload broke")

    pixels = picture(2000, 900)
    enc = encoding.open_encoder(Broken(), "JPEG", 900, 2000, 3)
    with pytest.raises(OSError, match="the upload broke"):
        for y in range(0, 2000, 100):
            enc.write(pixels[y : y + 100])
        enc.close()
    enc.abort()
    assert not encoders_running()


def encoders_running() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vips-encode" and t.is_alive()]


def test_abort_midway_ends_the_encoder_thread() -> None:
    enc = encoding.open_encoder(io.BytesIO(), "JPEG", 900, 700, 3)
    enc.write(picture()[:100])
    assert encoders_running()
    enc.abort()
    assert not encoders_running()


def test_too_few_rows_is_an_error_not_a_short_file() -> None:
    enc = encoding.open_encoder(io.BytesIO(), "PNG", 900, 700, 3)
    enc.write(picture()[:100])
    with pytest.raises(ValueError, match="got 100 rows of 700"):
        enc.close()
