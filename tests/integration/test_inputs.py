"""Bad input fails at once with a reason; odd-but-valid images and names work, and two sources
never share a result (handlers in-process)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms

from imagen.core.names import object_name

from .conftest import Harness

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "cat.jpg"
MODEL = "style_aged"  # the fastest model: these tests are about the pipeline, not the model


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb(side: int = 30000) -> bytes:
    """A real 30000×30000 bilevel PNG of zeros: ~110 KB on disk, 900 MP decoded."""
    row = b"\0" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


def encoded(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def photo() -> Image.Image:
    return Image.open(SAMPLE).convert("RGB")


def corrupt_png() -> bytes:
    data = bytearray(encoded(photo(), "PNG"))
    start = data.index(b"IDAT") + 40
    data[start : start + 400] = bytes(400)  # zeroed compressed data: the CRC and inflate fail
    return bytes(data)


BAD_INPUTS = {
    "zero-bytes": (lambda: b"", "empty"),
    "text-named-jpg": (lambda: b"meeting notes\nbring coffee\n", "not an image: the file looks like text"),
    "truncated-jpeg": (lambda: SAMPLE.read_bytes()[: SAMPLE.stat().st_size // 2], "truncated or corrupt"),
    "corrupt-png": (corrupt_png, "truncated or corrupt"),
    "decompression-bomb": (decompression_bomb, "30000x30000 = 900000000 pixels, over the limit"),
    "pixels-over-limit": (
        lambda: encoded(Image.new("L", (6000, 4000)), "PNG"),
        "over the limit of 20000000 pixels",
    ),
    "bytes-over-limit": (
        lambda: np.random.default_rng(0).bytes(9 * 1024 * 1024),
        "over the limit of 8388608 bytes",
    ),
    "pdf": (lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n", "a PDF document"),
    "svg": (
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect/></svg>',
        "an SVG drawing",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_at_once(harness: Harness, unique: str, case: str) -> None:
    make, reason = BAD_INPUTS[case]
    job = harness.process(f"{MODEL}/bad-{unique}/{case}.jpg", make())  # one delivery, no exception
    assert job["status"] == "failed"
    assert reason in job["reason"]
    assert job["attempts"] == 1, "bad input must not be retried"
    assert "last_error" not in job
    assert job["event_published"] is True


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise
    return encoded(photo(), "JPEG", exif=exif.tobytes())


def with_icc() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encoded(photo(), "JPEG", icc_profile=profile)


def animated_gif() -> bytes:
    frames = [photo().quantize(64), photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT).quantize(64)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def palette_with_transparency() -> bytes:
    im = photo().quantize(32)
    return encoded(im, "PNG", transparency=0)


def sixteen_bit() -> bytes:
    gray = np.asarray(photo().convert("L"), np.uint16) * 257
    return encoded(Image.fromarray(gray), "PNG")


GOOD_INPUTS = {
    "cmyk-jpeg": (lambda: encoded(photo().convert("CMYK"), "JPEG"), (400, 266)),
    "progressive-jpeg": (lambda: encoded(photo(), "JPEG", progressive=True), (400, 266)),
    "16bit-png": (sixteen_bit, (400, 266)),
    "grayscale-png": (lambda: encoded(photo().convert("L"), "PNG"), (400, 266)),
    "palette-transparency-png": (palette_with_transparency, (400, 266)),
    "exif-rotated-jpeg": (exif_rotated, (266, 400)),  # the result is upright
    "icc-profile-jpeg": (with_icc, (400, 266)),
    "animated-gif": (animated_gif, (400, 266)),
    "webp": (lambda: encoded(photo(), "WEBP"), (400, 266)),
    "avif": (lambda: encoded(photo(), "AVIF"), (400, 266)),
    "heic": (lambda: encoded(photo(), "HEIF"), (400, 266)),
}


@pytest.mark.parametrize("case", list(GOOD_INPUTS))
def test_accepted_images_are_processed(harness: Harness, triton: Any, unique: str, case: str) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    make, size = GOOD_INPUTS[case]
    job = harness.process(f"{MODEL}/good-{unique}/{case}", make())
    assert job["status"] == "done", job.get("reason")
    result = Image.open(io.BytesIO(harness.read(job["result_uri"])))
    assert result.size == size
    assert np.asarray(result.convert("L")).std() > 10  # a picture, not a blank


NAMES = {
    "unicode": "фото кота 🐱/çà.jpg",
    "spaces": "my holiday  photos/beach day 1.jpg",
    "dot-dot": "a/../b/./c.jpg",
    # ~1000 bytes in all, in segments of 200 (fake-gcs stores objects as files: 255 bytes a segment)
    "very-long": "long/" + "/".join(["x" * 200] * 4) + "/" + "y" * 190 + ".jpg",
}


@pytest.mark.parametrize("case", list(NAMES))
def test_awkward_names(harness: Harness, triton: Any, unique: str, case: str) -> None:
    name = f"{MODEL}/{unique}/{NAMES[case]}"
    job = harness.process(name, SAMPLE.read_bytes())
    assert job["status"] == "done", job.get("reason")
    result_name = object_name(job["result_uri"])
    assert result_name.startswith(f"results/{MODEL}/{unique}/")
    assert "/../" not in result_name and "/./" not in result_name
    assert len(result_name.encode()) <= 1024
    blob = harness.bucket.get_blob(result_name)
    assert blob is not None and blob.metadata["imagen-source"] == f"gs://{harness.bucket_name}/{name}"


# Two sources never share a result: one stem with two extensions, and paths that sanitise alike.


def variant(i: int, fmt: str = "JPEG") -> bytes:
    """A distinct small photo per i, encoded as `fmt`."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encoded(photo().crop((i * 30, 0, i * 30 + 160, 120)), fmt)


def assert_own_results(harness: Harness, jobs: dict[str, dict[str, Any]]) -> None:
    uris = [job["result_uri"] for job in jobs.values()]
    assert all(job["status"] == "done" for job in jobs.values()), [j.get("reason") for j in jobs.values()]
    assert len(set(uris)) == len(uris), uris
    for name, job in jobs.items():
        blob = harness.bucket.get_blob(object_name(job["result_uri"]))
        assert blob.metadata["imagen-source"] == f"gs://{harness.bucket_name}/{name}"
        assert blob.metadata["imagen-result"] == job["job_id"]


def test_iphone_export_heic_and_jpg_of_one_photo(harness: Harness, triton: Any, unique: str) -> None:
    names = {
        f"{MODEL}/{unique}/IMG_0001.HEIC": variant(0, "HEIF"),
        f"{MODEL}/{unique}/IMG_0001.JPG": variant(1),
    }
    jobs = {name: harness.process(name, data) for name, data in names.items()}
    assert_own_results(harness, jobs)
    assert jobs[f"{MODEL}/{unique}/IMG_0001.HEIC"]["result_uri"].endswith("/IMG_0001.HEIC.jpg")


def test_paths_that_sanitise_alike(harness: Harness, triton: Any, unique: str) -> None:
    names = {f"{MODEL}/{unique}/a/{mid}/b.jpg": variant(i) for i, mid in enumerate(["..", ".", "_"])}
    assert_own_results(harness, {name: harness.process(name, data) for name, data in names.items()})


def test_an_object_already_at_the_result_name_is_never_overwritten(
    harness: Harness, triton: Any, unique: str
) -> None:
    squatter = harness.put(f"results/{MODEL}/{unique}/mine.jpg.jpg", b"someone else's file")
    job = harness.process(f"{MODEL}/{unique}/mine.jpg", variant(2))
    assert job["status"] == "failed" and job["attempts"] == 1
    assert "already holds an object imagen did not write" in job["reason"]
    assert harness.bucket.get_blob(squatter["name"]).download_as_bytes() == b"someone else's file"
