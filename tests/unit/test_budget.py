"""A job's result size and memory need, decided from the header before any pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from imagen.core import options
from imagen.core.config import Config
from imagen.core.errors import BadInput
from imagen.core.formats import FORMATS
from imagen.core.models import MODELS
from imagen.image import budget, imaging

PROD = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
LIMITS = budget.OutputLimits(PROD.max_output_pixels)


def header(w: int, h: int, fmt: str = "JPEG", mode: str = "RGB") -> imaging.Header:
    return imaging.Header(w, h, fmt, mode, 1, 1)


def plan(model: str, w: int, h: int, mode: str = "RGB", source: int = 20_000_000) -> budget.Plan:
    return budget.plan(MODELS[model], header(w, h, mode=mode), source, LIMITS, PROD.job_budget_bytes, 8, 4)


def test_production_budget_is_the_instance_shared_by_its_jobs() -> None:
    assert PROD.job_budget_bytes == (2048 - PROD.worker_base_mb) // 4 * 1024 * 1024


@pytest.mark.parametrize("model", ["enhance", "style_comic", "style_aged", "background_remove"])
def test_a_48_megapixel_photo_fits_every_model_but_upscale(model: str) -> None:
    p = plan(model, 8000, 6000)
    assert (p.width, p.height, p.scale) == (8000, 6000, 1.0)
    assert p.need_bytes <= PROD.job_budget_bytes


def test_a_12_megapixel_photo_fits_upscale_at_x4() -> None:
    p = plan("upscale", 4000, 3000)
    assert (p.width, p.height, p.scale, p.resized) == (16000, 12000, 4.0, False)
    assert p.need_bytes <= PROD.job_budget_bytes


def test_an_upscale_over_the_pixel_cap_is_written_at_the_largest_factor_under_it() -> None:
    p = budget.plan(
        MODELS["upscale"], header(2000, 1000), 10**6, budget.OutputLimits(8_000_000), 10**12, 8, 4
    )
    assert p.scale == 2.0 and (p.width, p.height) == (4000, 2000) and p.resized
    assert (p.model_width, p.model_height) == (8000, 4000)


def test_a_strip_too_wide_for_a_jpeg_at_x4_is_upscaled_by_what_fits() -> None:
    out_w, out_h, scale = budget.output_size(MODELS["upscale"], header(16_400, 100), LIMITS, FORMATS["JPEG"])
    assert out_w <= FORMATS["JPEG"].max_side and scale == pytest.approx(65_500 / 16_400, abs=0.01)


@pytest.mark.parametrize(
    ("model", "w", "h", "reason"),
    [
        ("enhance", 50_000_000, 1, "a JPEG side cannot exceed 65500"),
        ("upscale", 100_000, 20, "a JPEG side cannot exceed 65500"),
        ("style_comic", 100_000, 20, "even its x1 result cannot be written"),
    ],
)
def test_results_no_format_can_hold_fail_before_decoding(model: str, w: int, h: int, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        plan(model, w, h)


def test_a_png_result_holds_a_long_strip_within_the_budget_or_says_so() -> None:
    p = plan("background_remove", 1_000_000, 1, mode="1", source=6_000)
    assert (p.width, p.height) == (1_000_000, 1)
    with pytest.raises(BadInput, match=r"50000000x1: background_remove needs ~[0-9.]+ GiB, over the budget"):
        plan("background_remove", 50_000_000, 1, mode="1", source=6_000)


def test_over_budget_fails_with_the_numbers() -> None:
    with pytest.raises(BadInput, match=r"needs ~[0-9.]+ GiB, over the budget of 0.1[0-9] GiB per job"):
        budget.plan(MODELS["enhance"], header(8000, 6000), 20_000_000, LIMITS, 128 * 1024 * 1024, 8, 4)


def test_need_grows_with_the_image_not_with_the_upscale() -> None:
    small, big = plan("enhance", 2000, 1500), plan("enhance", 8000, 6000)
    assert big.need["decoded image"] == 16 * small.need["decoded image"]
    assert plan("upscale", 4000, 3000).need_bytes < 16000 * 12000 * 3  # never the output image


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_a_view_matches_pillow(orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    arr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "PNG", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))))
    assert np.array_equal(imaging.orient(arr, orientation), expected)
    _, head = imaging.probe(buf.getvalue(), 10**6, 10**6)
    assert (head.height, head.width) == expected.shape[:2]


def opts_plan(model: str, w: int, h: int, meta: dict[str, str], alpha: bool = False) -> budget.Plan:
    head = imaging.Header(w, h, "PNG", "RGBA" if alpha else "RGB", 1, 1, alpha=alpha)
    opts = options.parse(model, meta)
    return budget.plan(MODELS[model], head, 10**6, LIMITS, PROD.job_budget_bytes, 8, 4, opts)


def test_the_format_asked_for_decides_the_result_and_its_side_limit() -> None:
    assert opts_plan("enhance", 4000, 3000, {"imagen-format": "webp"}).format.name == "WEBP"
    with pytest.raises(BadInput, match="a WEBP side cannot exceed 16383 pixels"):
        opts_plan("enhance", 20_000, 100, {"imagen-format": "webp"})
    up = opts_plan("upscale", 5000, 100, {"imagen-format": "avif"})  # x4 would be 20,000 wide
    assert up.width == 16_384 and up.scale == pytest.approx(16_384 / 5000, abs=1e-3)


def test_whole_image_encoders_are_planned_and_a_streamed_format_is_suggested() -> None:
    jpeg = opts_plan("enhance", 8000, 6000, {})
    avif = opts_plan("enhance", 3000, 2000, {"imagen-format": "avif"})
    assert avif.need_bytes > 32 * 6_000_000 and jpeg.need_bytes < PROD.job_budget_bytes
    with pytest.raises(BadInput, match=r"a streamed format, jpeg or png, needs less than avif"):
        opts_plan("enhance", 8000, 6000, {"imagen-format": "avif"})


def test_alpha_kept_costs_its_plane_and_is_dropped_for_jpeg() -> None:
    kept = opts_plan("upscale", 2000, 1500, {}, alpha=True)
    plain = opts_plan("upscale", 2000, 1500, {})
    assert kept.alpha and kept.channels == 4 and kept.format.name == "PNG"
    assert kept.need_bytes - plain.need_bytes >= 2 * 2000 * 1500  # the plane and its lanczos copy
    flat = opts_plan("upscale", 2000, 1500, {"imagen-format": "jpeg"}, alpha=True)
    assert not flat.alpha and flat.channels == 3
    assert opts_plan("upscale", 2000, 1500, {"imagen-scale": "2.5"}).width == 5000
