"""Files that would make the decoder work longer than their size and pixels justify end at probe
time with a readable reason; real files, and the hostile ones whose cost stays linear, pass."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from imagen.core.errors import BadInput
from imagen.image import decoder_limits, imaging
from imagen.image.decoder_limits import MAX_SCANS, jpeg_markers
from tests import hostile

LIMITS = {"max_bytes": 50 * 1024 * 1024, "max_pixels": 50_000_000}


def noisy(width: int, height: int) -> Image.Image:
    """Noise: its entropy-coded data is full of stuffed 0xFF00 bytes."""
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def jpeg(im: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **options)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("options", "scans"),
    [({}, 1), ({"progressive": True}, 10), ({"progressive": True, "restart_marker_blocks": 1}, 10)],
)
def test_a_real_jpeg_passes_with_its_scans_counted(options: dict[str, object], scans: int) -> None:
    data = jpeg(noisy(640, 480), quality=95, **options)
    assert b"\xff\x00" in data
    im, header = imaging.probe(data, **LIMITS)
    assert header.scans == scans and header.progressive == bool(options)
    assert imaging.load(im, header).pixels.shape == (480, 640, 3)


def test_grey_progressive_jpeg_has_six_scans() -> None:
    _, header = imaging.probe(jpeg(noisy(64, 48).convert("L"), progressive=True), **LIMITS)
    assert header.scans == 6


def test_other_formats_have_one_scan() -> None:
    buf = io.BytesIO()
    noisy(64, 48).save(buf, "PNG")
    assert imaging.probe(buf.getvalue(), **LIMITS)[1].scans == 1


def test_the_walk_steps_over_stuffing_restarts_and_fill() -> None:
    data = jpeg(noisy(256, 256), quality=95, progressive=True, restart_marker_blocks=4)
    assert b"\xff\xd0" in data
    at = data.index(b"\xff\xda")
    filled = data[:at] + b"\xff" * 5 + data[at:]  # fill bytes before a marker are allowed
    walk = jpeg_markers(filled)
    assert (walk.scans, walk.exif_segments, walk.stray_bytes, walk.complete) == (10, 0, 5, True)


def test_the_walk_stops_at_the_first_image_of_an_mpo() -> None:
    data = hostile.mpo_many_scans(10)  # two progressive images of 10 scans each
    assert data.count(b"\xff\xda") == 20
    assert jpeg_markers(data).scans == 10
    _, header = imaging.probe(data, **LIMITS)
    assert (header.format, header.scans) == ("MPO", 10)


def test_a_jpeg_whose_scan_repeats_is_refused_before_any_pixel_is_decoded() -> None:
    data = hostile.jpeg_many_scans(1000)  # 12 MP: Pillow would take ~7 s to decode it
    with pytest.raises(BadInput, match=r"the JPEG has 1000 scans, over the limit of 100: the decoder"):
        imaging.probe(data, **LIMITS)


def test_a_scan_repeated_past_the_segment_walk_is_reported_as_a_lower_bound() -> None:
    data = hostile.jpeg_many_scans(15_000)  # the team's file: 14 s to decode
    with pytest.raises(BadInput, match=r"the JPEG has at least \d+ scans, over the limit of 100"):
        imaging.probe(data, **LIMITS)


def test_the_scan_limit_is_inclusive_and_the_crafted_file_is_valid() -> None:
    at_limit = hostile.jpeg_many_scans(MAX_SCANS, 64, 48)
    im, header = imaging.probe(at_limit, **LIMITS)
    assert header.scans == MAX_SCANS
    assert imaging.load(im, header).pixels[0, 0].tolist() == [120, 130, 140]
    over = hostile.jpeg_many_scans(MAX_SCANS + 1, 64, 48)
    Image.open(io.BytesIO(over)).load()  # Pillow alone decodes it: only our limit stops it
    with pytest.raises(BadInput, match="101 scans, over the limit of 100"):
        imaging.probe(over, **LIMITS)


def test_an_mpo_is_held_to_the_scan_limit() -> None:
    with pytest.raises(BadInput, match="the JPEG has 500 scans"):
        imaging.probe(hostile.mpo_many_scans(500), **LIMITS)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: hostile.jpeg_many_segments(20_000), "more than 10000 marker segments"),
        (lambda: hostile.jpeg_many_exif_segments(9), "9 EXIF segments, over the limit of 8"),
        (
            lambda: hostile.jpeg_fill_bytes(2 << 20),
            "2097152 bytes outside its segments before the first scan",
        ),
        (lambda: hostile.tiff_many_strips(10, 200_000), "200000 strips or tiles, over the limit of 100000"),
        (lambda: hostile.png_many_chunks(300_000), "more than 250000 chunks"),
        (lambda: hostile.icc_oversized(12), r"ICC profile is \d+ bytes, over the limit of 8388608 bytes"),
    ],
)
def test_work_beyond_size_and_pixels_is_refused_at_probe_time(make: Callable[[], bytes], reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        imaging.probe(make(), **LIMITS)


@pytest.mark.parametrize(
    "make",
    [
        lambda: hostile.jpeg_many_segments(9_000),
        lambda: hostile.jpeg_many_exif_segments(8),
        lambda: hostile.jpeg_fill_bytes(64 * 1024),
        lambda: hostile.png_many_chunks(50_000),
    ],
)
def test_the_same_files_under_their_limits_decode(make: Callable[[], bytes]) -> None:
    im, header = imaging.probe(make(), **LIMITS)
    assert imaging.load(im, header).pixels.size > 0


def test_a_tiff_with_one_row_per_strip_decodes() -> None:
    im, header = imaging.probe(hostile.tiff_many_strips(600, 8000), **LIMITS)  # 8000 strips
    pixels = imaging.load(im, header).pixels
    assert pixels.shape == (8000, 600, 3) and pixels[5, 255:258, 0].tolist() == [255, 0, 1]


def test_a_normal_tiff_passes() -> None:
    buf = io.BytesIO()
    noisy(300, 200).save(buf, "TIFF", compression="tiff_deflate")
    im, header = imaging.probe(buf.getvalue(), **LIMITS)
    assert header.format == "TIFF" and imaging.load(im, header).pixels.shape == (200, 300, 3)


def test_a_bigtiff_directory_longer_than_a_classic_one_is_refused() -> None:
    data = b"II+\0" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 70_000) + bytes(20 * 16)
    assert decoder_limits.tiff_directory(data).entries == 70_000
    with pytest.raises(BadInput, match="first directory has 70000 entries, over the limit of 65535"):
        imaging.probe(data, **LIMITS)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_an_unreadable_tiff_directory_is_left_to_pillow() -> None:
    assert decoder_limits.tiff_directory(b"II*\0" + struct.pack("<I", 10**6)) == decoder_limits.TiffDirectory(
        0, 0
    )
    with pytest.raises(BadInput, match="not an image"):  # what Pillow makes of it
        imaging.probe(b"II*\0" + struct.pack("<I", 10**6), **LIMITS)


def test_an_icc_profile_under_the_limit_is_applied() -> None:
    im, header = imaging.probe(hostile.icc_oversized(1), **LIMITS)  # a grey ramp on the red channel
    assert imaging.load(im, header).pixels[0, 0].tolist() == [121, 120, 119]


def test_a_jpeg_carries_a_large_icc_profile_within_its_segment_limit() -> None:
    profile = hostile.icc_profile(64)  # 1.5 MB: 24 APP2 segments
    data = jpeg(noisy(64, 48), icc_profile=profile)
    im, header = imaging.probe(data, **LIMITS)
    assert im.info["icc_profile"] == profile


@pytest.mark.parametrize(
    ("make", "frames"),
    [
        (lambda: hostile.png_large_exif(65_535), 1),  # 786 kB of EXIF entries: ~0.05 s
        (lambda: hostile.png_large_exif(10, longs=2_000_000), 1),  # one 8 MB tag: read only if asked
        (lambda: hostile.gif_many_frames(100_000), 100_000),  # counted at ~0.085 us a byte
        (lambda: hostile.bmp_rle_rows(4000, 250), 1),  # Python RLE: ~120 ns a pixel
    ],
)
def test_costs_linear_in_the_bytes_or_pixels_are_accepted(make: Callable[[], bytes], frames: int) -> None:
    im, header = imaging.probe(make(), **LIMITS)
    assert header.frames == frames
    assert imaging.load(im, header).pixels.size > 0


def test_a_tall_png_written_one_idat_per_row_is_accepted() -> None:
    """An encoder that flushes every row: 150,000 rows, 150,000 IDAT chunks."""
    import struct
    import zlib

    width, height = 4, 150_000
    raw = b"".join(b"\0" + bytes([y % 256]) * (3 * width) for y in range(height))
    stream = zlib.compress(raw, 0)  # stored: a chunk for every row
    step = -(-len(stream) // height)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    head = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    idats = b"".join(chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step))
    data = b"\x89PNG\r\n\x1a\n" + head + idats + chunk(b"IEND", b"")
    assert decoder_limits.png_chunks(data) > 100_000
    assert decoder_limits.check_bytes(data) == 1  # accepted
    image = Image.open(io.BytesIO(data))  # and a real file: Pillow reads it whole
    image.load()
    assert image.size == (width, height) and image.getpixel((0, height - 1)) == ((height - 1) % 256,) * 3
