"""Jobs in bounded memory on the local stack, each worker under its memory limit (RLIMIT_DATA).

The budget is production's scaled down with the image (tests/function_env.py): the photo here
takes the same share of its budget as a 48 MP phone photo does of production's.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagen.core.models import MODELS
from tests import hostile
from tests.function_env import JOB_MEMORY_MB, PHOTO

from .conftest import upload, wait_finished

MIB = 1024 * 1024


def rotated_photo() -> bytes:
    """A JPEG stored landscape with EXIF orientation 6 (shown portrait, PHOTO), a red mark in its
    stored top-left corner (shown at the top right)."""
    shown_w, shown_h = PHOTO
    y, x = np.mgrid[0:shown_w, 0:shown_h]
    arr = np.stack([x * 255 // shown_h, y * 255 // shown_w, (x ^ y) & 255], axis=2).astype(np.uint8)
    arr[:120, :120] = (230, 20, 20)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


def small(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (40 * i, 90, 160)).save(buf, "JPEG")
    return buf.getvalue()


def result(bucket: Any, job: dict[str, Any]) -> Image.Image:
    name = job["result_uri"].split("/", 3)[3]
    return Image.open(io.BytesIO(bucket.blob(name).download_as_bytes()))


@pytest.mark.parametrize("model", list(MODELS))
def test_a_rotated_photo_beside_three_small_jobs_on_one_worker(
    bucket: Any, jobs_col: Any, unique: str, model: str
) -> None:
    files = {"photo.jpg": rotated_photo(), **{f"small-{i}.jpg": small(i) for i in range(3)}}
    with ThreadPoolExecutor(len(files)) as pool:  # all four at once on the model's one worker
        ids = dict(
            zip(
                files,
                pool.map(lambda kv: upload(bucket, f"{model}/mem-{unique}/{kv[0]}", kv[1]), files.items()),
                strict=True,
            )
        )
    jobs = {name: wait_finished(jobs_col, jid, timeout_s=240) for name, jid in ids.items()}
    for name, job in jobs.items():
        assert job["status"] == "done", f"{name}: {job.get('reason')}"
        assert job["attempts"] == 1
        out = job["output"]
        assert out["memory_budget_bytes"] == JOB_MEMORY_MB * MIB
        assert out["memory_need_bytes"] <= out["memory_budget_bytes"]
    photo = jobs["photo.jpg"]["output"]
    scale = MODELS[model].scale
    assert (photo["width"], photo["height"]) == (PHOTO[0] * scale, PHOTO[1] * scale)  # upright
    img = result(bucket, jobs["photo.jpg"])
    assert img.size == (photo["width"], photo["height"])
    if model == "background_remove":  # pixels kept exactly: the red mark is where the viewer sees it
        rgba = np.asarray(img)
        assert rgba[:100, -100:, 0].mean() > 200 and rgba[:100, -100:, 1].mean() < 60
        assert rgba[:100, :100, 0].mean() < 100


def strip(width: int, height: int, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buf, fmt)
    return buf.getvalue()


def one_bit_line(width: int) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (width, 1), 1).save(buf, "PNG")
    return buf.getvalue()


# name: (model, file, content encoding, status, reason or "")
EDGES: dict[str, tuple[str, Any, str, str, str]] = {
    "50000000x1-png-enhance": (
        "enhance",
        lambda: one_bit_line(50_000_000),
        "",
        "failed",
        "a JPEG side cannot exceed 65500 pixels",
    ),
    "50000000x1-png-background": (
        "background_remove",
        lambda: one_bit_line(50_000_000),
        "",
        "failed",
        "over the budget of",
    ),
    "16400x100-upscale": ("upscale", lambda: strip(16_400, 100), "", "failed", "over the budget of"),
    "16400x100-enhance": ("enhance", lambda: strip(16_400, 100), "", "done", ""),
    "100000x20-upscale": (
        "upscale",
        lambda: strip(100_000, 20, "PNG"),
        "",
        "failed",
        "even its x1 result cannot be written: a JPEG side cannot exceed 65500 pixels",
    ),
    "100000x20-background": ("background_remove", lambda: strip(100_000, 20, "PNG"), "", "done", ""),
    "gzip-bomb": ("style_aged", hostile.gzip_bomb, "gzip", "failed", "inflates to over the limit of"),
}


@pytest.mark.parametrize("case", list(EDGES))
def test_an_edge_of_the_limits_ends_on_its_first_attempt(
    bucket: Any, jobs_col: Any, unique: str, case: str
) -> None:
    model, make, encoding, status, reason = EDGES[case]
    blob = bucket.blob(f"{model}/edge-{unique}/{case}")
    if encoding:
        blob.content_encoding = encoding
    blob.upload_from_string(make(), content_type="application/octet-stream")
    from imagen.jobs.messages import job_id

    job = wait_finished(jobs_col, job_id(bucket.name, blob.name, str(blob.generation)), timeout_s=180)
    assert job["status"] == status, job.get("reason")
    assert job["attempts"] == 1 and "last_error" not in job, "a file's fault was retried as transient"
    if reason:
        assert reason in job["reason"]
    else:
        assert job["output"]["width"] == int(case.split("x")[0])
