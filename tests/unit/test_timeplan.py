"""The time plan: from the header alone, what a job will cost, against the per-job limit."""

from __future__ import annotations

import pytest

from emulators.settings import LOCAL_TILE_SECONDS
from imagen.core.config import Config
from imagen.core.errors import BadInput
from imagen.core.formats import FORMATS
from imagen.core.models import GPU_TILE_SECONDS, MODELS, TRITON_MODELS, UPSCALE_FIDELITY
from imagen.image import budget
from imagen.image.imaging import Header
from imagen.image.timeplan import plan, tiles

PROD = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
JPEG = FORMATS["JPEG"]


def header(width: int, height: int, fmt: str = "JPEG", scans: int = 1) -> Header:
    return Header(width, height, fmt, "RGB", 1, 1, progressive=scans > 1, scans=scans)


def test_tiles_follow_the_grid() -> None:
    spec = MODELS["style_aged"]  # 128 px tiles, overlap 14: stride 114
    assert tiles(spec, 128, 128) == 1
    assert tiles(spec, 129, 128) == 2
    assert tiles(spec, 4000, 3000) == 35 * 27  # origins 0, 114, ... and one flush with each end
    assert tiles(MODELS["background_remove"], 8000, 6000) == 1  # the whole image, resized


@pytest.mark.parametrize("name", sorted(TRITON_MODELS))
@pytest.mark.parametrize("mp", [1, 12, 48])
def test_production_fits_phone_photos_on_the_gpu(name: str, mp: int) -> None:
    """Every model at 1, 12 and 48 MP that the memory plan takes fits the time limit on the
    stated GPU figures (x4 of 48 MP is refused by the memory plan first, with its numbers)."""
    spec = TRITON_MODELS[name]
    width, height = {1: (1152, 864), 12: (4000, 3000), 48: (8000, 6000)}[mp]
    head = header(width, height)
    try:
        memory = budget.plan(
            spec,
            head,
            mp * 250_000,
            budget.OutputLimits(PROD.max_output_pixels),
            PROD.job_budget_bytes,
            PROD.tile_batch,
            PROD.tile_concurrency,
        )
    except BadInput as refused:
        assert spec.scale > 1 and mp == 48 and "over the budget" in str(refused)
        return
    out = (memory.width, memory.height, memory.scale)
    got = plan(
        spec, head, out, memory.format, PROD.tile_seconds, PROD.worker_concurrency, PROD.job_time_limit_s
    )
    assert 0 < got.total_s <= PROD.job_time_limit_s


def test_a_small_file_asking_for_much_work_fails_with_the_numbers() -> None:
    """A 35 KB flat PNG of 16000x12000 through the fidelity upscaler on this CPU's figures."""
    with pytest.raises(BadInput) as caught:
        plan(
            UPSCALE_FIDELITY,
            header(16000, 12000, "PNG"),
            (16000, 12000, 1.0),
            JPEG,
            LOCAL_TILE_SECONDS,
            4,
            3600,
        )
    text = str(caught.value)
    assert "16000x12000" in text and "tiles x 3.5 s" in text and "over the limit of 3600 s" in text
    assert "imagen-upscale=perceptual" in text


def test_upscale_comes_down_to_the_largest_factor_whose_encoding_fits() -> None:
    spec = MODELS["upscale"]
    avif = FORMATS["AVIF"]
    head = header(2000, 1500)
    full = plan(spec, head, (8000, 6000, 4.0), avif, GPU_TILE_SECONDS, 4, 10_000)
    limit = int(full.total_s) - 60  # encoding 48 MP of AVIF on a shared vCPU is what does not fit
    got = plan(spec, head, (8000, 6000, 4.0), avif, GPU_TILE_SECONDS, 4, limit, scale_flexible=True)
    assert 1.0 <= got.scale < 4.0 and got.total_s <= limit
    with pytest.raises(BadInput):  # without leave to change the factor, it fails
        plan(spec, head, (8000, 6000, 4.0), avif, GPU_TILE_SECONDS, 4, limit)


def test_progressive_scans_cost_decode_time() -> None:
    spec = MODELS["style_aged"]
    one = plan(spec, header(4000, 3000), (4000, 3000, 1.0), JPEG, GPU_TILE_SECONDS, 1, 10_000)
    many = plan(spec, header(4000, 3000, scans=100), (4000, 3000, 1.0), JPEG, GPU_TILE_SECONDS, 1, 10_000)
    assert many.decode_s > one.decode_s + 0.5


def test_deadline_is_far_past_the_plan_and_inside_the_timeout() -> None:
    got = plan(MODELS["enhance"], header(4000, 3000), (4000, 3000, 1.0), JPEG, GPU_TILE_SECONDS, 4, 360)
    assert got.deadline_s(540) == min(486, max(3 * got.total_s, got.total_s + 60))
    assert got.deadline_s(540) <= 0.9 * 540
    assert set(got.record()) >= {"decode_s", "infer_s", "encode_s", "total_s", "tiles", "tile_s"}
