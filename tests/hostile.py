"""Hostile and broken files that must end at once: each builds the bytes of one case."""

from __future__ import annotations

import io
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
