"""Per-upload options through on_upload and on_job (in-process, real emulators and Triton)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from emulators.stack import Stack
from imagen.core.names import object_name

from .conftest import Harness


def rgba_png(size: tuple[int, int] = (96, 64)) -> tuple[bytes, np.ndarray]:
    """A photo-like RGBA PNG: a gradient, clear on the left third, half-clear in the middle."""
    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.linspace(30, 220, w, dtype=np.uint8)[None]
    rgb[..., 1] = np.linspace(200, 40, h, dtype=np.uint8)[:, None]
    rgb[..., 2] = 120
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:, : w // 3], alpha[:, w // 3 : w // 2] = 0, 128
    buf = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buf, "PNG")
    return buf.getvalue(), alpha


def jpeg(size: tuple[int, int] = (120, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (40, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def result(harness: Harness, job: dict[str, Any]) -> tuple[Image.Image, Any]:
    blob = harness.bucket.get_blob(object_name(job["result_uri"]))
    return Image.open(io.BytesIO(blob.download_as_bytes())), blob


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ({"imagen-format": "gif"}, "imagen-format must be one of jpeg, png, webp, avif"),
        ({"imagen-scale": "2"}, "imagen-scale applies to upscale only"),
        ({"imagen-quality": "101"}, "imagen-quality must be a number from 1 to 100"),
    ],
)
def test_a_bad_option_fails_the_job_at_once_and_publishes_nothing(
    harness: Harness, unique: str, meta: dict[str, str], reason: str
) -> None:
    job_id = harness.upload(f"enhance/{unique}/bad.jpg", jpeg(), **meta)
    job = harness.svc.jobs.document(job_id) or {}
    assert job["status"] == "failed" and reason in job["reason"] and job["attempts"] == 0
    assert job["event_published"] is True  # the failed event went out at once
    # a delivery (there is none: nothing was published) would find it failed and run nothing
    assert harness.run(job_id)["attempts"] == 0


def test_format_quality_and_result_headers(triton: Stack, harness: Harness, unique: str) -> None:
    job = harness.process(
        f"style_aged/{unique}/cat.jpg",
        jpeg(),
        **{"imagen-format": "webp", "imagen-quality": "70", "owner": "ana", "Campaign": "spring"},
    )
    assert job["status"] == "done", job.get("reason")
    assert job["options"] == {"imagen-format": "webp", "imagen-quality": "70"}
    img, blob = result(harness, job)
    assert job["result_uri"].endswith("/cat.jpg.webp") and img.format == "WEBP" and img.size == (120, 80)
    assert blob.content_type == "image/webp" and blob.cache_control == harness.cfg.result_cache_control
    meta = blob.metadata
    assert meta["owner"] == "ana" and meta["Campaign"] == "spring"  # the source's own keys, copied
    assert meta["imagen-format"] == "webp" and meta["imagen-quality"] == "70"
    assert meta["imagen-model"] == "style_aged" and meta["imagen-alpha"] == "false"


def test_avif_and_png_results(triton: Stack, harness: Harness, unique: str) -> None:
    for fmt, pil in (("avif", "AVIF"), ("png", "PNG")):
        job = harness.process(f"enhance/{unique}/{fmt}.jpg", jpeg(), **{"imagen-format": fmt})
        img, blob = result(harness, job)
        assert img.format == pil and blob.content_type == f"image/{fmt}" and img.size == (120, 80)


@pytest.mark.parametrize(("scale", "size"), [("2", (240, 160)), ("2.5", (300, 200)), ("1", (120, 80))])
def test_upscale_by_the_factor_asked(
    triton: Stack, harness: Harness, unique: str, scale: str, size: tuple[int, int]
) -> None:
    job = harness.process(f"upscale/{unique}/x{scale}.jpg", jpeg(), **{"imagen-scale": scale})
    img, blob = result(harness, job)
    assert (
        img.size == size and job["output"]["scale"] == float(scale) and blob.metadata["imagen-scale"] == scale
    )


@pytest.mark.parametrize(
    ("character", "triton_model"), [("perceptual", "upscale"), ("fidelity", "upscale_fidelity")]
)
def test_upscale_runs_the_model_of_the_character_asked(
    triton: Stack, harness: Harness, unique: str, character: str, triton_model: str
) -> None:
    job = harness.process(
        f"upscale/{unique}/{character}.jpg", jpeg((64, 48)), **{"imagen-upscale": character}
    )
    assert job["status"] == "done", job.get("reason")
    img, blob = result(harness, job)
    assert img.size == (256, 192) and job["output"]["triton_model"] == triton_model
    assert blob.metadata["imagen-upscale"] == character


@pytest.mark.parametrize("model", ["enhance", "style_comic", "style_aged"])
def test_alpha_is_kept_through_the_x1_models(
    triton: Stack, harness: Harness, unique: str, model: str
) -> None:
    data, alpha = rgba_png()
    job = harness.process(f"{model}/{unique}/logo.png", data, "image/png")
    img, blob = result(harness, job)
    assert job["result_uri"].endswith("/logo.png.png") and img.format == "PNG" and img.mode == "RGBA"
    assert np.array_equal(np.asarray(img)[..., 3], alpha)  # carried through unchanged
    assert job["output"]["alpha_kept"] is True and blob.metadata["imagen-alpha"] == "true"


def test_alpha_upscaled_with_lanczos_and_webp_when_a_quality_is_asked(
    triton: Stack, harness: Harness, unique: str
) -> None:
    data, alpha = rgba_png()
    job = harness.process(f"upscale/{unique}/logo.png", data, "image/png", **{"imagen-quality": "90"})
    img, _ = result(harness, job)
    assert img.format == "WEBP" and img.mode == "RGBA" and img.size == (384, 256)
    got = np.asarray(img)[..., 3].astype(int)
    want = np.asarray(Image.fromarray(alpha).resize((384, 256), Image.Resampling.LANCZOS), dtype=int)
    assert np.abs(got - want).mean() < 2  # lossy WebP alpha is near the lanczos plane


def test_a_transparent_upload_asked_as_jpeg_is_flattened(
    triton: Stack, harness: Harness, unique: str
) -> None:
    data, _ = rgba_png()
    job = harness.process(f"enhance/{unique}/flat.png", data, "image/png", **{"imagen-format": "jpeg"})
    img, _ = result(harness, job)
    assert img.format == "JPEG" and img.mode == "RGB"
    assert np.asarray(img)[32, 5].min() > 230  # the clear part on white, as before


def test_background_remove_on_a_colour_cropped_and_as_a_mask(
    triton: Stack, harness: Harness, unique: str
) -> None:
    from tests.integration.conftest import sample_bytes

    photo = sample_bytes()
    source = Image.open(io.BytesIO(photo)).size
    plain = harness.process(f"background_remove/{unique}/cat.jpg", photo)
    cutout, _ = result(harness, plain)
    on_white = harness.process(
        f"background_remove/{unique}/white.jpg",
        photo,
        **{"imagen-background": "white", "imagen-format": "jpeg"},
    )
    img, blob = result(harness, on_white)
    assert img.mode == "RGB" and img.format == "JPEG" and img.size == source
    assert blob.metadata["imagen-background"] == "#ffffff"
    clear = np.asarray(cutout)[..., 3] == 0
    assert np.asarray(img)[clear].mean() > 240  # where the cutout is clear, the result is white
    crop_id = harness.upload(
        f"background_remove/{unique}/crop.jpg", photo, **{"imagen-crop": "subject", "imagen-crop-margin": "0"}
    )
    cropped = harness.run(crop_id)
    crop_img, crop_blob = result(harness, cropped)
    box = cropped["output"]["crop_box"]
    assert crop_img.size == (box[2] - box[0], box[3] - box[1]) and crop_img.size < source
    assert crop_blob.metadata["imagen-crop-box"] == ",".join(map(str, box))
    # an attempt that wrote the result and died before `done` (still running, its lease run out):
    # the next attempt reuses the result and reports its box, size and model version
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    harness.svc.jobs.col.document(crop_id).update({"status": "running", "lease_until": past})
    again = harness.run(crop_id)
    assert again["status"] == "done" and again["output"]["result_reused"] is True
    assert again["attempts"] == cropped["attempts"] + 1
    assert again["output"]["crop_box"] == box
    assert (again["output"]["width"], again["output"]["height"]) == crop_img.size
    assert again["model_version"] == cropped["model_version"]
    sub = np.asarray(crop_img)[..., 3] >= 128
    assert sub[0].any() and sub[-1].any() and sub[:, 0].any() and sub[:, -1].any()  # the subject fills it
    same = np.asarray(cutout)[box[1] : box[3], box[0] : box[2]].astype(int)
    assert np.abs(np.asarray(crop_img).astype(int) - same).max() <= 1  # the mask's rows, scaled alike
    mask = harness.process(f"background_remove/{unique}/mask.jpg", photo, **{"imagen-output": "mask"})
    matte, _ = result(harness, mask)
    assert matte.mode == "L" and matte.size == source
    assert np.array_equal(np.asarray(matte), np.asarray(cutout)[..., 3])
