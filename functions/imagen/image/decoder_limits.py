"""Caps on the decoder work a file can ask for beyond what its size and pixels justify.

Counted from the bytes before Pillow reads them (pure computation), so a crafted file fails at
probe time, before any pixel is decoded. Each cap sits far above what real files carry; the
figures are in docs/hostile.md (`python -m bench.hostile`).

JPEG scans. libjpeg decodes every scan of a progressive JPEG into its coefficient buffer, a pass
over every block each time, so a few bytes of scan cost ~0.55 ms per megapixel (a refinement
scan, measured): 1,000 repeated scans make a 100 KiB, 12 MP file take 6.7 s. That is the
exploit in "Two Issues with the JPEG Standard". libjpeg-turbo's answer is a limit the
application chooses: `djpeg`/`jpegtran -maxscans N` (doc/usage.txt: "a method by which
applications can guard against" it) and TurboJPEG's TJPARAM_SCANLIMIT (src/turbojpeg.h; default
no limit), which in 3.0 replaced 2.1's TJFLAG_LIMITSCANS, a fixed 500 (ChangeLog.md). Its own
fuzzers decompress with a limit of 100 since commit 694d996 ("500 scans was an arbitrary
choice, and reducing it to 100 does not affect default coverage"; fuzz/decompress.cc). We take
100 too: libjpeg's standard progression has 10 scans for YCbCr (6 for grey), custom scan
scripts a few dozen, and 100 scans of a 50 MP image cost ~3 s, where 50 MiB of repeated scans
would cost hours.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from imagen.core.errors import BadInput

MAX_SCANS = 100
# Marker segments: a photo has a few dozen (a few hundred with a long ICC profile or XMP). Pillow
# reads each one before the first scan in Python (~1 us, and up to ~100 bytes of list each), and
# so does the walk below: this also bounds the walk.
MAX_JPEG_SEGMENTS = 10_000
# APP1 "Exif" segments: a camera writes one. Pillow joins every one by copying what it has so
# far (quadratic: 9,000 segments of 256 bytes, 2.3 MB, take seconds; 50 MiB of them, hours).
MAX_EXIF_SEGMENTS = 8
# Fill and junk bytes between segments before the first scan: Pillow steps through them one at
# a time in Python (0.36 us each, 18 s for 50 MiB); after it libjpeg skips them in C.
MAX_STRAY_BYTES = 1 << 20
# Strips or tiles: Pillow builds one tile in Python per strip as it opens an uncompressed TIFF
# (~3.5 us and ~380 bytes each, so 50 MiB of strip offsets would take 24 s and 2.4 GiB). A 50 MP
# TIFF with one row per strip has 6-8k (50k for a 1000x50000 strip); 256x256 tiles, ~800.
MAX_TILES = 100_000
# Entries in a TIFF's first directory: Pillow reads each in Python. 65,535 is all a classic
# TIFF can hold (~0.1 s); a BigTIFF's count is 64-bit and gets the same bound.
MAX_IFD_ENTRIES = 65_535
# PNG chunks: Pillow handles each in Python (~2 us), before the image data and after it. libpng
# writes 8 KiB IDATs (6,400 for 50 MiB); an encoder that flushes every row, one per row: 250,000
# lets a 200x250,000 strip written that way through, at ~0.5 s.
MAX_PNG_CHUNKS = 250_000
# An embedded ICC profile: LittleCMS parses it whole (~8 ns a byte, and 2-3 times its size in
# memory). Display and camera profiles are a few KiB, printer profiles a few MiB.
MAX_ICC_BYTES = 8 << 20

_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # what ends a scan's entropy-coded data
_NOT_FILL = re.compile(rb"[^\xff]")
_STANDALONE = {0x01, 0xD8, *range(0xD0, 0xD8)}  # TEM, SOI, RST0-7: markers without a length
_TIFF = {b"II*\0": ("<", False), b"MM\0*": (">", False), b"II+\0": ("<", True), b"MM\0+": (">", True)}
_STRIP_OR_TILE_OFFSETS = (273, 324)


@dataclass(frozen=True)
class JpegMarkers:
    """What a JPEG's marker walk counted, up to its first EOI (an MPO's first image)."""

    scans: int
    segments: int
    exif_segments: int
    stray_bytes: int  # outside any segment before the first scan
    complete: bool  # False: the walk stopped past MAX_JPEG_SEGMENTS, the counts are lower bounds


def jpeg_markers(data: bytes, max_segments: int = MAX_JPEG_SEGMENTS) -> JpegMarkers:
    """Walk the marker segments from SOI as libjpeg reads them, once through the bytes: after each
    SOS the entropy-coded data runs to the next 0xFF that is not stuffing (0xFF00), a restart
    marker or fill. Stops at EOI, at the end of the data, or once past `max_segments`."""
    scans = segments = exif = stray = 0
    pos, size = 2, len(data)
    while pos < size:
        if data[pos] != 0xFF:  # junk before a marker (libjpeg skips it with a warning)
            nxt = data.find(b"\xff", pos)
            nxt = size if nxt < 0 else nxt
            stray += (nxt - pos) if not scans else 0
            pos = nxt
            continue
        found = _NOT_FILL.search(data, pos)
        if found is None:
            break
        code, fill = data[found.start()], found.start() - pos - 1
        stray += fill if not scans else 0
        pos = found.start() + 1
        if code == 0xD9:
            break
        if code == 0x00:  # 0xFF00 outside a scan is junk too
            stray += 2 if not scans else 0
            continue
        if code in _STANDALONE:
            continue
        if pos + 2 > size:
            break
        segments += 1
        if segments > max_segments:
            return JpegMarkers(scans, segments, exif, stray, False)
        length = int.from_bytes(data[pos : pos + 2], "big")
        if code == 0xE1 and data.startswith(b"Exif\0\0", pos + 2):
            exif += 1
        pos += max(length, 2)
        if code == 0xDA:
            scans += 1
            end = _JPEG_MARKER.search(data, pos)
            pos = size if end is None else end.start()
    return JpegMarkers(scans, segments, exif, stray, True)


def check_jpeg(data: bytes) -> int:
    """The JPEG's scan count; BadInput when its markers ask for more work than any photo does."""
    walk = jpeg_markers(data)
    at_least = "" if walk.complete else "at least "
    if walk.scans > MAX_SCANS:
        raise BadInput(
            f"the JPEG has {at_least}{walk.scans} scans, over the limit of {MAX_SCANS}: the decoder passes "
            "over every pixel once per scan, and a progressive JPEG has about 10"
        )
    if not walk.complete:
        raise BadInput(
            f"the JPEG has more than {MAX_JPEG_SEGMENTS} marker segments (the limit; a photo has a few dozen)"
        )
    if walk.exif_segments > MAX_EXIF_SEGMENTS:
        raise BadInput(
            f"the JPEG has {walk.exif_segments} EXIF segments, over the limit of {MAX_EXIF_SEGMENTS}: "
            "a camera writes one"
        )
    if walk.stray_bytes > MAX_STRAY_BYTES:
        raise BadInput(
            f"the JPEG has {walk.stray_bytes} bytes outside its segments before the first scan, "
            f"over the limit of {MAX_STRAY_BYTES}"
        )
    return max(walk.scans, 1)


@dataclass(frozen=True)
class TiffDirectory:
    """What a TIFF's first directory (its first page) lists; zeros when it cannot be read."""

    entries: int
    tiles: int  # strip or tile offsets: one decoder tile each


def tiff_directory(data: bytes) -> TiffDirectory:
    """Read the first directory's entry count and its strip or tile count (classic or BigTIFF)."""
    kind = _TIFF.get(data[:4])
    if kind is None:
        return TiffDirectory(0, 0)
    order, big = kind
    try:
        if big:
            (first,) = struct.unpack_from(order + "Q", data, 8)
            (entries,) = struct.unpack_from(order + "Q", data, first)
            entry, at = struct.Struct(order + "HHQ8x"), first + 8
        else:
            (first,) = struct.unpack_from(order + "I", data, 4)
            (entries,) = struct.unpack_from(order + "H", data, first)
            entry, at = struct.Struct(order + "HHI4x"), first + 2
    except struct.error:
        return TiffDirectory(0, 0)  # Pillow says what is wrong with it
    if entries > MAX_IFD_ENTRIES:
        return TiffDirectory(entries, 0)
    block = data[at : at + entry.size * entries]
    block = block[: len(block) - len(block) % entry.size]
    counts = [n for tag, _type, n in entry.iter_unpack(block) if tag in _STRIP_OR_TILE_OFFSETS]
    return TiffDirectory(entries, max(counts, default=0))


def check_tiles(fmt: str, tiles: int) -> None:
    """BadInput when the decoder would loop over more strips or tiles than any real file has."""
    if tiles > MAX_TILES:
        raise BadInput(
            f"the {fmt} image is stored in {tiles} strips or tiles, over the limit of {MAX_TILES}: "
            "the decoder handles them one at a time"
        )


def check_tiff(data: bytes) -> None:
    """BadInput for a first TIFF directory that Pillow would take long (or much memory) to open."""
    ifd = tiff_directory(data)
    if ifd.entries > MAX_IFD_ENTRIES:
        raise BadInput(
            f"the TIFF's first directory has {ifd.entries} entries, over the limit of {MAX_IFD_ENTRIES}"
        )
    check_tiles("TIFF", ifd.tiles)


def png_chunks(data: bytes, stop_after: int = MAX_PNG_CHUNKS) -> int:
    """How many chunks a PNG has up to IEND, counting no further than one past `stop_after`."""
    pos, count = 8, 0
    while pos + 8 <= len(data) and count <= stop_after:
        (length,) = struct.unpack_from(">I", data, pos)
        count += 1
        if data[pos + 4 : pos + 8] == b"IEND":
            break
        pos += 12 + length
    return count


def check_png(data: bytes) -> None:
    """BadInput for a PNG of more chunks than any encoder writes."""
    if png_chunks(data) > MAX_PNG_CHUNKS:
        raise BadInput(
            f"the PNG has more than {MAX_PNG_CHUNKS} chunks (the limit; the decoder handles each in Python)"
        )


def check_icc(icc: bytes | None) -> None:
    """BadInput for an embedded ICC profile larger than any real one, before LittleCMS parses it."""
    if icc and len(icc) > MAX_ICC_BYTES:
        raise BadInput(
            f"the embedded ICC profile is {len(icc)} bytes, over the limit of {MAX_ICC_BYTES} bytes "
            "(a printer profile has a few MiB)"
        )


def check_bytes(data: bytes) -> int:
    """The pre-decoding checks for the format the bytes start with; the JPEG's scan count, else 1."""
    if data[:3] == b"\xff\xd8\xff":  # JPEG and MPO, as Pillow recognises them
        return check_jpeg(data)
    if data[:4] in _TIFF:
        check_tiff(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        check_png(data)
    return 1
