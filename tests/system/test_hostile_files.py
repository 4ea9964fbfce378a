"""Hostile and broken files end at once, through the whole stack: attempts 1, never a retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from imagen.image import decoder_limits
from imagen.jobs.messages import job_id
from tests import hostile

from .conftest import upload, wait_finished

CASES: dict[str, tuple[str, Callable[[], bytes], str, str]] = {
    # name: (model, file, status, reason or "")
    "png-iccp-over-limit": (
        "style_aged",
        hostile.png_iccp_over_limit,
        "failed",
        "Decompressed data too large",
    ),
    "png-many-ztxt": ("style_aged", hostile.png_many_ztxt, "failed", "Too much memory used in text chunks"),
    "tiff-broken-second-ifd": ("style_aged", hostile.tiff_broken_second_ifd, "done", ""),
    "gif-truncated-second-frame": ("style_aged", hostile.gif_truncated_second_frame, "done", ""),
    "tiff-20000-ifds": ("style_aged", hostile.tiff_many_ifds, "done", ""),
    # Decoder work beyond size and pixels (issue 23): refused at probe time, before any pixel.
    "jpeg-1000-scans": (
        "style_aged",
        lambda: hostile.jpeg_many_scans(1000),
        "failed",
        "over the limit of 100:",
    ),
    "mpo-500-scans": (
        "style_aged",
        lambda: hostile.mpo_many_scans(500),
        "failed",
        "500 scans, over the limit",
    ),
    "jpeg-100-scans": ("style_aged", lambda: hostile.jpeg_many_scans(100, 640, 480), "done", ""),
    "jpeg-20000-segments": (
        "style_aged",
        lambda: hostile.jpeg_many_segments(20_000),
        "failed",
        "more than 10000 marker segments",
    ),
    "jpeg-9-exif-segments": (
        "style_aged",
        lambda: hostile.jpeg_many_exif_segments(9),
        "failed",
        "9 EXIF segments, over the limit of 8",
    ),
    "jpeg-2mib-fill": (
        "style_aged",
        lambda: hostile.jpeg_fill_bytes(2 << 20),
        "failed",
        "bytes outside its segments before the first scan",
    ),
    "tiff-200000-strips": (
        "style_aged",
        lambda: hostile.tiff_many_strips(10, 200_000),
        "failed",
        "200000 strips or tiles, over the limit of 100000",
    ),
    "png-300000-chunks": (
        "style_aged",
        lambda: hostile.png_many_chunks(300_000),
        "failed",
        f"more than {decoder_limits.MAX_PNG_CHUNKS} chunks",
    ),
    "gzip-4mib-of-empty-members": (
        "style_aged",
        lambda: hostile.gzip_many_members(4, hostile.progressive_jpeg(64, 48)),
        "done",
        "",
    ),
}
# Uploaded with this Content-Encoding (the worker inflates them).
ENCODING = {"gzip-4mib-of-empty-members": "gzip"}
# The frame count a `done` case reports; the others read only their first frame (None).
FRAMES = {"jpeg-100-scans": 1, "gzip-4mib-of-empty-members": 1}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_ends_on_its_first_attempt(bucket: Any, jobs_col: Any, unique: str, case: str) -> None:
    model, make, status, reason = CASES[case]
    name = f"{model}/hostile-{unique}/{case}"
    if case in ENCODING:
        blob = bucket.blob(name)
        blob.content_encoding = ENCODING[case]
        blob.upload_from_string(make(), content_type="image/jpeg")
        uploaded = job_id(bucket.name, name, str(blob.generation))
    else:
        uploaded = upload(bucket, name, make())
    job = wait_finished(jobs_col, uploaded, timeout_s=90)
    assert job["status"] == status, job.get("reason")
    assert job["attempts"] == 1 and "last_error" not in job, "a file's fault was retried as transient"
    if reason:
        assert reason in job["reason"]
    else:
        assert job["output"]["source_frames"] == FRAMES.get(case)  # None: only the first frame was read
