"""Hostile and broken files end at once, through the whole stack: attempts 1, never a retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

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
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_ends_on_its_first_attempt(bucket: Any, jobs_col: Any, unique: str, case: str) -> None:
    model, make, status, reason = CASES[case]
    job = wait_finished(jobs_col, upload(bucket, f"{model}/hostile-{unique}/{case}", make()), timeout_s=90)
    assert job["status"] == status, job.get("reason")
    assert job["attempts"] == 1 and "last_error" not in job, "a file's fault was retried as transient"
    if reason:
        assert reason in job["reason"]
    else:
        assert job["output"]["source_frames"] is None  # only the first frame was read
