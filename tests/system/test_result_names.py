"""Two sources never share a result: one stem with two extensions, and paths that sanitise alike."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from imagen.core.names import object_name

from .conftest import SAMPLE, upload, wait_finished


def variant(i: int, fmt: str = "JPEG") -> bytes:
    """A distinct small photo per i, encoded as `fmt`."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.open(SAMPLE).convert("RGB").crop((i * 30, 0, i * 30 + 160, 120)).save(buf, fmt)
    return buf.getvalue()


def results_of(bucket: Any, jobs_col: Any, names: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    jobs = {name: upload(bucket, name, data) for name, data in names.items()}
    return {name: wait_finished(jobs_col, jid) for name, jid in jobs.items()}


def assert_own_results(bucket: Any, jobs: dict[str, dict[str, Any]]) -> None:
    uris = [job["result_uri"] for job in jobs.values()]
    assert all(job["status"] == "done" for job in jobs.values()), [j.get("reason") for j in jobs.values()]
    assert len(set(uris)) == len(uris), uris
    for name, job in jobs.items():
        blob = bucket.get_blob(object_name(job["result_uri"]))
        assert blob.metadata["imagen-source"] == f"gs://{bucket.name}/{name}"
        assert blob.metadata["imagen-result"] == job["job_id"]


def test_iphone_export_heic_and_jpg_of_one_photo(bucket: Any, jobs_col: Any, unique: str) -> None:
    names = {
        f"style_aged/{unique}/IMG_0001.HEIC": variant(0, "HEIF"),
        f"style_aged/{unique}/IMG_0001.JPG": variant(1),
    }
    jobs = results_of(bucket, jobs_col, names)
    assert_own_results(bucket, jobs)
    assert jobs[f"style_aged/{unique}/IMG_0001.HEIC"]["result_uri"].endswith("/IMG_0001.HEIC.jpg")


def test_paths_that_sanitise_alike(bucket: Any, jobs_col: Any, unique: str) -> None:
    names = {f"style_aged/{unique}/a/{mid}/b.jpg": variant(i) for i, mid in enumerate(["..", ".", "_"])}
    assert_own_results(bucket, results_of(bucket, jobs_col, names))


def test_an_object_already_at_the_result_name_is_never_overwritten(
    bucket: Any, jobs_col: Any, unique: str
) -> None:
    squatter = bucket.blob(f"results/style_aged/{unique}/mine.jpg.jpg")
    squatter.upload_from_string(b"someone else's file", content_type="image/jpeg")
    job = wait_finished(jobs_col, upload(bucket, f"style_aged/{unique}/mine.jpg", variant(2)))
    assert job["status"] == "failed" and job["attempts"] == 1
    assert "already holds an object imagen did not write" in job["reason"]
    assert bucket.get_blob(squatter.name).download_as_bytes() == b"someone else's file"
