"""Hostile and broken files that must end at once: each builds the bytes of one case."""

from __future__ import annotations

import gzip
import io
import re
import struct
import zlib

from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with(chunks: bytes) -> bytes:
    """A small valid PNG with extra chunks before its image data."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 60, 20)).save(buf, "PNG")
    data = buf.getvalue()
    at = data.index(b"IDAT") - 4
    return data[:at] + chunks + data[at:]


def png_iccp_over_limit() -> bytes:
    """An iCCP profile that inflates to 2 MiB, past Pillow's per-chunk limit (1 MiB): 2 KB file."""
    return _png_with(_chunk(b"iCCP", b"icc\0\0" + zlib.compress(bytes(2 * 1024 * 1024), 9)))


def png_many_ztxt() -> bytes:
    """70 zTXt chunks of ~1 MB each once inflated: past Pillow's 64 MiB text budget; 72 KB file."""
    text = b"a" * (1000 * 1024)
    return _png_with(b"".join(_chunk(b"zTXt", b"k%d\0\0" % i + zlib.compress(text, 9)) for i in range(70)))


def _two_page_tiff() -> tuple[bytearray, int]:
    """A two-page TIFF and the offset of its first IFD's next-IFD pointer."""
    buf = io.BytesIO()
    pages = [Image.new("RGB", (40, 30), (20, 60, 200)), Image.new("RGB", (40, 30), (20, 200, 60))]
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    data = bytearray(buf.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    entries = struct.unpack("<H", data[first : first + 2])[0]
    return data, first + 2 + 12 * entries


def tiff_broken_second_ifd() -> bytes:
    """The first page is fine; the pointer to the second IFD points past the end of the file."""
    data, next_at = _two_page_tiff()
    data[next_at : next_at + 4] = struct.pack("<I", len(data) + 1000)
    return bytes(data)


def gif_truncated_second_frame() -> bytes:
    """A two-frame GIF cut inside the second frame's header: the first frame is whole."""
    red = Image.new("RGB", (64, 64), (255, 0, 0)).quantize(8)
    noise = Image.effect_noise((64, 64), 50).convert("RGB").quantize(64)
    buf = io.BytesIO()
    red.save(buf, "GIF", save_all=True, append_images=[noise])
    data = buf.getvalue()
    second = data.index(b"\x2c", data.index(b"\x21\xf9", 20) + 8)  # the second image descriptor
    return data[: second + 6]


def tiff_many_ifds(count: int = 20_000) -> bytes:
    """A 1x1 grey TIFF whose IFD chain has `count` pages (counting them is quadratic in Pillow)."""
    header = b"II*\0" + struct.pack("<I", 9) + b"\x80"  # IFDs start at 9; the one pixel at 8
    tags = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1)]
    tags += [(273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, 1), (279, 4, 1, 1)]
    size = 2 + 12 * len(tags) + 4
    out = [header]
    for i in range(count):
        ifd = struct.pack("<H", len(tags))
        for tag, kind, n, value in tags:
            ifd += struct.pack("<HHII", tag, kind, n, value)
        nxt = 9 + (i + 1) * size if i + 1 < count else 0
        out.append(ifd + struct.pack("<I", nxt))
    return b"".join(out)


def gzip_bomb(stored_mb: int = 3) -> bytes:
    """About `stored_mb` MB of gzip that inflates ~1000x (3 MB -> 3 GB): identical members of
    32 MiB of zeros each, one after another (a valid multi-member gzip file)."""
    member = zlib.compress(bytes(32 << 20), 9, wbits=31)
    return member * (stored_mb * 1_000_000 // len(member))


# Files that make the decoder work longer than their size and pixels justify (issue 23); the
# caps that stop them are in imagen.image.decoder_limits, their cost before and after in docs/hostile.md.


def gzip_many_members(mib: float, content: bytes = b"") -> bytes:
    """About `mib` MiB of empty gzip members (20 bytes each), then one holding `content`."""
    empty = gzip.compress(b"", mtime=0)
    return empty * int(mib * (1 << 20) // len(empty)) + gzip.compress(content, mtime=0)


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment of a JPEG Pillow wrote; a scan ends after its data."""
    out, pos = [], 2
    while data[pos + 1] != 0xD9:
        end = pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if data[pos + 1] == 0xDA:
            found = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end)
            end = found.start() if found else len(data) - 2
        out.append((data[pos + 1], pos, end))
        pos = end
    return out


def progressive_jpeg(width: int, height: int, colour: tuple[int, int, int] = (120, 130, 140)) -> bytes:
    """A flat progressive JPEG: libjpeg's standard 10 scans, each a few bytes of EOB runs."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "JPEG", quality=75, progressive=True)
    return buf.getvalue()


def jpeg_many_scans(scans: int, width: int = 4000, height: int = 3000) -> bytes:
    """A progressive JPEG whose last scan (the luma AC refinement, 26 bytes) repeats until there
    are `scans`: a valid file (Pillow decodes it, ~6.7 ms a scan at 12 MP) of ~26 bytes a scan."""
    data = progressive_jpeg(width, height)
    sos = [(start, end) for marker, start, end in _jpeg_segments(data) if marker == 0xDA]
    start, end = sos[-1]
    return data[:end] + data[start:end] * (scans - len(sos)) + data[end:]


def mpo_many_scans(scans: int) -> bytes:
    """A two-image MPO whose first image's last scan repeats until it has `scans`."""
    a, b = Image.new("RGB", (640, 480), (20, 40, 60)), Image.new("RGB", (640, 480), (60, 40, 20))
    buf = io.BytesIO()
    a.save(buf, "MPO", save_all=True, append_images=[b], progressive=True)
    data = buf.getvalue()
    sos = [(start, end) for marker, start, end in _jpeg_segments(data) if marker == 0xDA]
    start, end = sos[9]  # the first image's last scan
    return data[:end] + data[start:end] * (scans - 10) + data[end:]


def _jpeg_with(segments: bytes) -> bytes:
    """A small baseline JPEG with `segments` (any bytes) right after its APP0."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 150)).save(buf, "JPEG")
    data = buf.getvalue()
    at = 4 + struct.unpack(">H", data[4:6])[0]
    return data[:at] + segments + data[at:]


def jpeg_many_segments(count: int) -> bytes:
    """`count` empty COM segments before the frame (Pillow lists each, in Python): 4 bytes each."""
    return _jpeg_with(b"\xff\xfe\x00\x02" * count)


def jpeg_many_exif_segments(count: int, size: int = 64) -> bytes:
    """`count` APP1 Exif segments of `size` bytes each: Pillow joins them by copying (quadratic)."""
    segment = b"\xff\xe1" + struct.pack(">H", 8 + size) + b"Exif\0\0" + bytes(size)
    return _jpeg_with(segment * count)


def jpeg_fill_bytes(count: int) -> bytes:
    """`count` 0xFF fill bytes before a marker (allowed; Pillow steps through them one at a time)."""
    return _jpeg_with(b"\xff" * count)


def tiff_many_strips(width: int, height: int, rows_per_strip: int = 1) -> bytes:
    """An uncompressed grey TIFF of `height / rows_per_strip` strips that all point at the same
    bytes: 8 bytes of offset and count per strip, so a tall one is a small file."""
    strips = -(-height // rows_per_strip)
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1)]
    tags += [(273, 4, strips, 0), (277, 3, 1, 1), (278, 4, 1, rows_per_strip), (279, 4, strips, 0)]
    offsets_at = 8 + 2 + 12 * len(tags) + 4
    counts_at = offsets_at + 4 * strips
    pixels_at = counts_at + 4 * strips
    strip = width * rows_per_strip
    arrays = {273: pixels_at, 279: strip} if strips == 1 else {273: offsets_at, 279: counts_at}
    out = [b"II*\0", struct.pack("<IH", 8, len(tags))]
    for tag, kind, count, value in tags:
        value = arrays.get(tag, value)
        entry = struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 else None
        out.append(entry or struct.pack("<HHII", tag, kind, count, value))
    out.append(struct.pack("<I", 0))
    if strips > 1:
        out.append(struct.pack(f"<{strips}I", *([pixels_at] * strips)))
        out.append(struct.pack(f"<{strips}I", *([strip] * strips)))
    out.append(bytes(range(256)) * (strip // 256) + bytes(strip % 256))
    return b"".join(out)


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))


def icc_profile(grid: int) -> bytes:
    """A valid RGB input profile whose A2B0 is a 16-bit 3D table of `grid`^3 points (a grey ramp
    from the first channel): 6*grid^3 bytes, so 101 points make 6 MB and 161 make 25 MB."""
    ramp = [round(65535 * i / (grid - 1)) for i in range(grid)]
    point = struct.Struct(">HHH")
    clut = b"".join(point.pack(v, 32896, 32896) * (grid * grid) for v in ramp)
    identity = struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0, 65536)
    ends = struct.pack(">HH", 0, 65535)
    lut = b"mft2" + bytes(4) + bytes([3, 3, grid, 0]) + identity + struct.pack(">HH", 2, 2)
    lut += ends * 3 + clut + ends * 3
    text = b"imagen hostile\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(78)
    tags = [(b"desc", desc), (b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"cprt", b"text" + bytes(4) + b"none\0")]
    tags.append((b"A2B0", lut))
    at, table, body = 128 + 4 + 12 * len(tags), struct.pack(">I", len(tags)), b""
    for sig, tag in tags:
        body += bytes(-(at + len(body)) % 4)
        table += sig + struct.pack(">II", at + len(body), len(tag))
        body += tag
    size = 128 + len(table) + len(body)
    header = struct.pack(">I4s4B", size, b"lcms", 2, 0x40, 0, 0) + b"scnrRGB Lab " + bytes(12) + b"acsp"
    header += bytes(24) + struct.pack(">I", 0) + _xyz(0.9642, 1.0, 0.8249)[8:] + bytes(48)
    return header + table + body


def icc_oversized(mib: float) -> bytes:
    """A small TIFF carrying a valid ICC profile of at least `mib` MiB (LittleCMS parses it whole)."""
    grid = 2
    while 6 * grid**3 < mib * (1 << 20):
        grid += 1
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (128, 10, 200)).save(buf, "TIFF", icc_profile=icc_profile(grid))
    return buf.getvalue()


def png_many_chunks(count: int) -> bytes:
    """`count` empty private chunks before the image data (Pillow reads each in Python): 12 bytes each."""
    return _png_with(_chunk(b"prVt", b"") * count)


def png_large_exif(entries: int = 65_535, longs: int = 0) -> bytes:
    """A PNG whose eXIf chunk has `entries` tags (65,535 at most), the last one `longs` 4-byte
    values when `longs` is given (Pillow reads such a tag only when asked)."""
    data_at = 8 + 2 + 12 * entries + 4
    ifd = [struct.pack("<H", entries), struct.pack("<HHIHH", 0x0112, 3, 1, 1, 0)]
    ifd += [struct.pack("<HHIHH", 0x8000 | i & 0x7FFF, 3, 1, 1, 0) for i in range(entries - 1 - bool(longs))]
    if longs:
        ifd.append(struct.pack("<HHII", 0xC000, 4, longs, data_at))
    exif = b"II*\0" + struct.pack("<I", 8) + b"".join(ifd) + struct.pack("<I", 0) + bytes(4 * longs)
    return _png_with(_chunk(b"eXIf", exif))


def gif_many_frames(count: int) -> bytes:
    """A 1x1 GIF of `count` frames, 15 bytes each (Pillow counts them by walking every one)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"  # clear, 0, end
    return screen + frame * count + b"\x3b"


def bmp_rle_rows(width: int, height: int) -> bytes:
    """An 8-bit RLE BMP whose rows are one pixel and an end-of-line: 4 bytes a row, and Pillow's
    Python RLE decoder pads each row one byte at a time (~120 ns a pixel)."""
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    body = b"\x01\x07\x00\x00" * height + b"\x00\x01"
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(body), 2835, 2835, 256, 0)
    at = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", at + len(body), 0, 0, at) + info + palette + body
