"""Sources read within the limit and results written as they are encoded, on fake-gcs-server."""

from __future__ import annotations

import gzip
import io
from typing import Any

import pytest
from PIL import Image

from imagen.cloud.objects import ResultHeaders, ResultUpload, Written
from imagen.core.errors import BadInput, Transient
from imagen.jobs.messages import JobMessage

from .conftest import Harness, sample_bytes


def message(harness: Harness, name: str) -> JobMessage:
    blob = harness.bucket.get_blob(name)
    return JobMessage(
        "job-" + name.replace("/", "-"), "enhance", harness.bucket_name, name, str(blob.generation)
    )


JPEG = ResultHeaders("image/jpeg")


def test_a_gzip_encoded_upload_is_read_inflated(harness: Harness, unique: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(buf, "BMP")  # 180 kB, gzips to a few
    data, zipped = buf.getvalue(), gzip.compress(buf.getvalue())
    blob = harness.bucket.blob(f"enhance/{unique}/zipped.bmp")
    blob.content_encoding = "gzip"
    blob.upload_from_string(zipped, content_type="image/bmp")
    assert harness.svc.storage.download(message(harness, blob.name), 10**8).data == data
    limit = len(zipped) * 2  # the stored file passes; inflating it does not
    with pytest.raises(BadInput, match=f"inflates to over the limit of {limit} bytes"):
        harness.svc.storage.download(message(harness, blob.name), limit)


def test_a_large_result_streams_in_chunks_and_exists_only_once_complete(
    harness: Harness, unique: str
) -> None:
    harness.put(f"enhance/{unique}/src.jpg", sample_bytes())
    msg = message(harness, f"enhance/{unique}/src.jpg")
    name = f"results/enhance/{unique}/src.jpg.jpg"
    upload = harness.svc.storage.begin_result(msg, name, JPEG, 256 * 1024, "1")
    assert isinstance(upload, ResultUpload)
    body = bytes(range(256)) * 4096  # 1 MiB: four chunks
    for i in range(0, len(body), 100_000):
        upload.write(body[i : i + 100_000])
    assert harness.bucket.get_blob(name) is None  # nothing visible before the commit
    written = upload.commit()
    assert written.wrote and written.generation
    blob = harness.bucket.get_blob(name)
    assert blob.download_as_bytes() == body and blob.metadata["imagen-result"] == msg.job_id
    again = harness.svc.storage.begin_result(msg, name, JPEG, 256 * 1024)
    assert isinstance(again, Written) and not again.wrote and again.size == len(body)


def test_an_aborted_result_leaves_nothing(harness: Harness, unique: str) -> None:
    harness.put(f"enhance/{unique}/src.jpg", sample_bytes())
    msg = message(harness, f"enhance/{unique}/src.jpg")
    name = f"results/enhance/{unique}/src.jpg.jpg"
    upload = harness.svc.storage.begin_result(msg, name, JPEG, 256 * 1024)
    assert isinstance(upload, ResultUpload)
    upload.write(bytes(600 * 1024))  # past one chunk: the resumable session has begun
    upload.abort()
    assert harness.bucket.get_blob(name) is None


def test_a_result_written_meanwhile_is_not_overwritten(harness: Harness, unique: str) -> None:
    """One request under a chunk, with its precondition. (A streamed result sends the same
    precondition with its session, which GCS checks when the upload completes; fake-gcs-server
    does not check it there, so that path is not asserted here.)"""
    harness.put(f"enhance/{unique}/src.jpg", sample_bytes())
    msg = message(harness, f"enhance/{unique}/src.jpg")
    name = f"results/enhance/{unique}/src.jpg.jpg"
    upload = harness.svc.storage.begin_result(msg, name, JPEG, 256 * 1024)
    assert isinstance(upload, ResultUpload)
    upload.write(bytes(100 * 1024))
    harness.bucket.blob(name).upload_from_string(b"someone else")
    with pytest.raises(Transient, match="changed while this job wrote it"):
        upload.commit()
    assert harness.bucket.blob(name).download_as_bytes() == b"someone else"


def test_an_upscale_too_wide_for_x4_is_written_at_the_factor_that_fits(
    harness: Harness, triton: Any, unique: str
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (17_000, 16), (90, 120, 150)).save(buf, "PNG")
    # The plan is the point, not the model: the perceptual upscaler runs 17,000 px in ~150 light
    # tiles on this CPU, where the fidelity one would take minutes.
    job = harness.process(
        f"upscale/{unique}/wide.png", buf.getvalue(), "image/png", **{"imagen-upscale": "perceptual"}
    )
    assert job["status"] == "done", job.get("reason")
    out = job["output"]
    assert out["width"] == 65_500 and out["model_scale"] == 4 and 3.85 < out["scale"] < 3.86
    img = Image.open(io.BytesIO(harness.read(job["result_uri"])))
    assert img.size == (out["width"], out["height"]) == (65_500, 61)


_RUN_UNDER_LIMIT = """
import resource, sys
from pathlib import Path
from imagen.jobs import messages
from imagen.core.config import Config
from imagen.jobs.messages import JobMessage
from imagen.flow.services import Services
from imagen.handlers.worker import handle_job
from tests.messages import push_body

cfg = Config.from_env()
svc = Services.from_config(cfg)
status = Path("/proc/self/status").read_text().splitlines()
data_kb = next(int(line.split()[1]) for line in status if line.startswith("VmData:"))
limit = data_kb * 1024 + 200 * 1024 * 1024  # room for 200 MiB more: the job's 430 MiB array is not
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
handle_job(cfg, svc, messages.PUBSUB_PUBLISHED, push_body(JobMessage(*sys.argv[1:6])))
"""


def test_running_out_of_memory_is_retried_once_then_fails_with_the_numbers(
    harness: Harness, cfg: Any, unique: str
) -> None:
    """A budget set too high for the process (JOB_MEMORY_MB) meets the process's real limit. The
    first time, another job on the instance may have held the memory: retried; the second time
    it is the image's: failed, saying what it needed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    buf = io.BytesIO()
    Image.new("L", (12_000, 12_000), 128).save(buf, "PNG")  # 144 MP of grey, a small file
    jid = harness.upload(f"background_remove/{unique}/huge.png", buf.getvalue(), "image/png")
    msg = harness.message(jid)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "GOOGLE_CLOUD_PROJECT": cfg.project,
        "MODEL_NAME": "background_remove",
        "MAX_INPUT_PIXELS": str(200_000_000),
        "JOB_MEMORY_MB": str(100_000),
        "PYTHONPATH": os.pathsep.join(str(root / p) for p in ("functions", "cli", ".")),
    }

    def deliver() -> subprocess.CompletedProcess[str]:
        args = [msg.job_id, msg.model, msg.bucket, msg.name, msg.generation]
        return subprocess.run(
            [sys.executable, "-c", _RUN_UNDER_LIMIT, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = deliver()
    assert first.returncode != 0 and "Transient: ran out of memory" in first.stderr  # a 500: redelivered
    job = harness.svc.jobs.document(jid) or {}
    assert job["status"] == "queued" and "retrying once" in job["last_error"]
    second = deliver()
    assert second.returncode == 0, second.stderr[-2000:]
    job = harness.svc.jobs.document(jid) or {}
    assert job["status"] == "failed" and job["attempts"] == 2
    assert job["reason"].startswith("ran out of memory: the image is 12000x12000, estimated at ~")
    assert job["reason"].endswith("of a 97.66 GiB budget per job")
