"""Per-upload options through the whole stack, set as an object's custom metadata (what
`gcloud storage cp --custom-metadata=imagen-format=webp …` sets): uploaded at once, then checked."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from emulators.settings import ROOT
from imagen.core.names import object_name

from .conftest import upload, wait_finished

SAMPLE = ROOT / "samples" / "cat.jpg"  # 400x266


def transparent_png() -> tuple[bytes, np.ndarray]:
    rgb = np.zeros((120, 160, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = np.linspace(20, 230, 160, dtype=np.uint8)[None], 90
    alpha = np.zeros((120, 160), np.uint8)
    alpha[20:100, 30:130] = 255
    alpha[50:70, 60:100] = 100  # half-clear inside
    buf = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buf, "PNG")
    return buf.getvalue(), alpha


def test_every_option_through_the_stack(bucket: Any, jobs_col: Any, unique: str) -> None:
    photo = SAMPLE.read_bytes()
    buf = io.BytesIO()
    Image.open(io.BytesIO(photo)).resize((160, 106)).save(buf, "JPEG", quality=90)
    small = buf.getvalue()
    logo, alpha = transparent_png()
    cases: dict[str, tuple[str, bytes, dict[str, str]]] = {
        "webp": ("enhance", photo, {"imagen-format": "webp", "imagen-quality": "60", "team": "red"}),
        "avif": ("style_aged", photo, {"imagen-format": "avif"}),
        "png": ("style_comic", photo, {"imagen-format": "png"}),
        "x2.5": ("upscale", photo, {"imagen-scale": "2.5"}),  # the stack's default: perceptual
        "fidelity": ("upscale", small, {"imagen-upscale": "fidelity"}),
        "alpha": ("style_aged", logo, {}),
        "alpha-x2": ("upscale", logo, {"imagen-scale": "2"}),
        "white": ("background_remove", photo, {"imagen-background": "#ffffff", "imagen-format": "jpeg"}),
        "crop": ("background_remove", photo, {"imagen-crop": "subject", "imagen-crop-margin": "5"}),
        "mask": ("background_remove", photo, {"imagen-output": "mask"}),
    }
    ids = {
        key: upload(
            bucket, f"{model}/opt-{unique}/{key}", data, "image/png" if data is logo else "image/jpeg", **meta
        )
        for key, (model, data, meta) in cases.items()
    }
    jobs = {key: wait_finished(jobs_col, jid, timeout_s=240) for key, jid in ids.items()}
    assert {k: j["status"] for k, j in jobs.items()} == dict.fromkeys(cases, "done"), {
        k: j.get("reason") for k, j in jobs.items()
    }

    def result(key: str) -> tuple[Image.Image, Any]:
        blob = bucket.get_blob(object_name(jobs[key]["result_uri"]))
        return Image.open(io.BytesIO(blob.download_as_bytes())), blob

    img, blob = result("webp")
    assert (img.format, img.size, blob.content_type) == ("WEBP", (400, 266), "image/webp")
    assert blob.metadata["team"] == "red" and blob.metadata["imagen-quality"] == "60"
    assert blob.cache_control == "private, max-age=3600"
    assert jobs["webp"]["result_uri"].endswith(f"opt-{unique}/webp.webp")
    assert (result("avif")[0].format, result("png")[0].format) == ("AVIF", "PNG")
    assert result("x2.5")[0].size == (1000, 665) and jobs["x2.5"]["output"]["scale"] == 2.5
    assert jobs["x2.5"]["output"]["triton_model"] == "upscale"
    fidelity, fidelity_blob = result("fidelity")
    assert fidelity.size == (640, 424) and jobs["fidelity"]["output"]["triton_model"] == "upscale_fidelity"
    assert fidelity_blob.metadata["imagen-upscale"] == "fidelity"

    kept, _ = result("alpha")
    assert kept.mode == "RGBA" and np.array_equal(np.asarray(kept)[..., 3], alpha)
    up, up_blob = result("alpha-x2")
    assert up.mode == "RGBA" and up.size == (320, 240) and up_blob.metadata["imagen-alpha"] == "true"
    big = np.asarray(up)[..., 3]
    assert big[60, 160] == 255 and big[10, 10] == 0 and 60 < big[120, 160] < 140  # opaque, clear, half

    white, _ = result("white")
    assert white.mode == "RGB" and white.size == (400, 266) and np.asarray(white)[0:5, 0:5].min() > 235
    cropped, crop_blob = result("crop")
    box = jobs["crop"]["output"]["crop_box"]
    assert cropped.size == (box[2] - box[0], box[3] - box[1]) and cropped.width < 400
    assert crop_blob.metadata["imagen-crop-box"] == ",".join(map(str, box))
    matte, _ = result("mask")
    assert matte.mode == "L" and matte.size == (400, 266)


def test_each_bad_value_fails_at_once_naming_the_key(bucket: Any, jobs_col: Any, unique: str) -> None:
    photo = SAMPLE.read_bytes()
    cases = {
        "enhance": ({"imagen-format": "bmp"}, "imagen-format must be one of jpeg, png, webp, avif"),
        "style_comic": ({"imagen-quality": "0"}, "imagen-quality must be a number from 1 to 100"),
        "upscale": ({"imagen-scale": "8"}, "imagen-scale must be a number from 1 to 4"),
        "style_aged": ({"imagen-crop": "subject"}, "imagen-crop applies to background_remove only"),
        "background_remove": ({"imagen-background": "blurple"}, "imagen-background must be an opaque colour"),
    }
    ids = {m: upload(bucket, f"{m}/bad-{unique}/cat.jpg", photo, **meta) for m, (meta, _) in cases.items()}
    for model, jid in ids.items():
        job = wait_finished(jobs_col, jid, timeout_s=60)
        assert job["status"] == "failed" and cases[model][1] in job["reason"]
        assert job["attempts"] == 0  # no worker ever ran it: Triton was never called
