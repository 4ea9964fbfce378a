"""What a job writes: alpha carried beside a model's colour, and background_remove's cutouts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagen.core.errors import BadInput
from imagen.core.options import parse
from imagen.image import compose, encoding


def strips_of(img: np.ndarray, rows: int) -> list[np.ndarray]:
    return [img[y : y + rows] for y in range(0, len(img), rows)]


def test_alpha_is_carried_unchanged_through_a_x1_model() -> None:
    rgb = np.full((300, 200, 3), 90, np.uint8)
    alpha = np.tile(np.arange(200, dtype=np.uint8), (300, 1))
    out = compose.with_alpha(iter(strips_of(rgb, 128)), 200, 300, alpha, 1)
    joined = np.concatenate(list(out.strips))
    assert out.channels == 4 and joined.shape == (300, 200, 4)
    assert np.array_equal(joined[..., 3], alpha) and np.array_equal(joined[..., :3], rgb)


def test_alpha_upscaled_in_strips_equals_one_lanczos_resize() -> None:
    rng = np.random.default_rng(1)
    alpha = (rng.random((50, 40)) * 255).astype(np.uint8)
    rgb = np.zeros((200, 160, 3), np.uint8)
    out = compose.with_alpha(iter(strips_of(rgb, 64)), 160, 200, alpha, 4)
    joined = np.concatenate(list(out.strips))[..., 3].astype(int)
    whole = np.asarray(Image.fromarray(alpha).resize((160, 200), Image.Resampling.LANCZOS), dtype=int)
    assert np.abs(joined - whole).max() <= 1  # strips see their neighbours: no seams


def test_no_alpha_is_three_channels() -> None:
    rgb = np.zeros((10, 10, 3), np.uint8)
    assert compose.with_alpha(iter([rgb]), 10, 10, None, 1).channels == 3


def disc_mask(size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.where((yy - 32) ** 2 + (xx - 20) ** 2 < 100, 255, 0).astype(
        np.uint8
    )  # a disc at (20, 32), r=10


def test_subject_box_follows_the_mask_scaled_to_the_image() -> None:
    box = compose.subject_box(disc_mask(), 640, 640, 0)
    # the disc spans x 10..30 and y 22..42 of 64: x 100..300 and y 220..420 of 640 (bilinear edges)
    assert box[0] == pytest.approx(105, abs=10) and box[2] == pytest.approx(300, abs=10)
    assert box[1] == pytest.approx(225, abs=10) and box[3] == pytest.approx(420, abs=10)
    grown = compose.subject_box(disc_mask(), 640, 640, 10)
    w, h = box[2] - box[0], box[3] - box[1]
    assert grown == (
        box[0] - round(w / 10),
        box[1] - round(h / 10),
        box[2] + round(w / 10),
        box[3] + round(h / 10),
    )
    assert compose.subject_box(disc_mask(), 640, 640, 100)[0] == 0  # clamped to the image


def test_an_empty_mask_cannot_be_cropped() -> None:
    with pytest.raises(BadInput, match="no subject was found"):
        compose.subject_box(np.zeros((64, 64), np.uint8), 640, 480, 5)


def test_cutout_on_a_colour_is_opaque_and_blends_the_edges() -> None:
    pixels = np.full((640, 640, 3), (200, 10, 10), np.uint8)
    out = compose.cutout(pixels, disc_mask(), parse("background_remove", {"imagen-background": "#00ff00"}))
    img = np.concatenate(list(out.strips))
    assert out.channels == 3 and img.shape == (640, 640, 3)
    assert tuple(img[0, 0]) == (0, 255, 0) and tuple(img[320, 200]) == (200, 10, 10)
    edge = img[320, 95:110]  # where the mask ramps: between the two colours
    assert ((edge[:, 1] > 0) & (edge[:, 1] < 255)).any()


def test_cutout_cropped_and_as_a_mask() -> None:
    pixels = np.full((640, 640, 3), 50, np.uint8)
    opts = parse("background_remove", {"imagen-crop": "subject", "imagen-output": "mask"})
    out = compose.cutout(pixels, disc_mask(), opts)
    matte = np.concatenate(list(out.strips))
    assert out.box is not None and out.channels == 1
    assert matte.shape == (out.height, out.width, 1) == (out.box[3] - out.box[1], out.box[2] - out.box[0], 1)
    assert matte.max() == 255 and matte[0, 0, 0] < compose.SUBJECT  # the subject touches the box's edges only


@pytest.mark.parametrize("fmt", ["WEBP", "AVIF", "PNG"])
def test_transparent_results_in_every_format_that_holds_alpha(fmt: str) -> None:
    rgba = np.zeros((64, 96, 4), np.uint8)
    rgba[..., 0], rgba[:, 48:, 3] = 200, 255
    buf = io.BytesIO()
    enc = encoding.open_encoder(buf, fmt, 96, 64, 4, (48, 32), quality=90)  # resized on the way out
    enc.write(rgba)
    enc.close()
    img = Image.open(io.BytesIO(buf.getvalue()))
    assert img.format == fmt and img.size == (48, 32) and img.mode == "RGBA"
    a = np.asarray(img)
    assert a[:, :20, 3].max() <= 8 and a[:, 28:, 3].min() >= 247
    assert abs(int(a[16, 30, 0]) - 200) <= 12  # premultiplied: the edge is not darkened by the clear side


def test_jpeg_refuses_alpha() -> None:
    with pytest.raises(ValueError, match="JPEG holds no alpha"):
        encoding.open_encoder(io.BytesIO(), "JPEG", 4, 4, 4)


def test_a_crop_box_read_back_from_metadata_is_checked() -> None:
    assert compose.parse_box(compose.format_box((3, 4, 50, 60)), 64, 64) == (3, 4, 50, 60)
    for text in (
        "3,4,50",
        "3,4,50,x",
        "3,4,50,²",
        "50,4,3,60",
        "3,60,50,4",
        "3,4,3,60",
        "3,4,65,60",
        "-1,4,50,60",
        "",
    ):
        assert compose.parse_box(text, 64, 64) is None, text
