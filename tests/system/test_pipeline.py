"""The main job on the real stack: upload under a model prefix → result under results/ → job done.

(Bad input is checked in tests/integration/test_inputs.py; uploads that start no job, in
tests/system/test_no_loops.py.)"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagen.core.models import MODELS
from imagen.jobs.messages import RESULT_MARKER

from .conftest import finished, upload, wait_until

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "cat.jpg"


@pytest.mark.parametrize("model", list(MODELS))
def test_model_end_to_end(bucket: Any, jobs_col: Any, unique: str, model: str) -> None:
    source = SAMPLE.read_bytes()
    name = f"{model}/e2e-{unique}/cat photo.jpg"
    jid = upload(bucket, name, source)

    job = wait_until(lambda: finished(jobs_col, jid), timeout_s=180)
    assert job["status"] == "done", job.get("reason")
    ext = "png" if model == "background_remove" else "jpg"
    result_name = f"results/{model}/e2e-{unique}/cat photo.jpg.{ext}"
    assert job["result_uri"] == f"gs://{bucket.name}/{result_name}"
    assert [h["status"] for h in job["history"]] == ["queued", "running", "done"]
    assert job["attempts"] == 1 and job["model_version"] == "1"
    assert {"download_s", "decode_s", "infer_s", "encode_s", "upload_s", "total_s"} <= set(job["timings"])

    blob = bucket.get_blob(result_name)
    assert blob is not None
    assert blob.metadata[RESULT_MARKER] == jid
    assert blob.metadata["imagen-source"] == f"gs://{bucket.name}/{name}"
    assert blob.metadata["imagen-model"] == model

    original = Image.open(io.BytesIO(source)).convert("RGB")
    result = Image.open(io.BytesIO(blob.download_as_bytes()))
    scale = 4 if model == "upscale" else 1
    assert result.size == (original.width * scale, original.height * scale)
    if model == "background_remove":
        assert result.mode == "RGBA"
        alpha = np.asarray(result)[:, :, 3]
        assert (alpha < 32).mean() > 0.05, "no background was removed"
        assert (alpha > 223).mean() > 0.2, "the subject was removed too"
    rgb = result.convert("RGB").resize(original.size, Image.Resampling.BILINEAR)
    diff = np.abs(np.asarray(rgb, np.int16) - np.asarray(original, np.int16))
    if model == "background_remove":  # the RGB stays; the change is in alpha
        assert diff.mean() < 2
    else:
        assert diff.mean() > 2, f"{model} result is nearly the input (mean diff {diff.mean():.2f})"
