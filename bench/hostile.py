"""Crafted files: what each costs the decoder before and after the limits (issue 23).

Each file is built once (tests/hostile.py), then decoded in a fresh process by the code of one
revision, as the worker does: inflated when gzip-encoded, then `imaging.decode` (probe and load)
under production's limits (50 MiB, 50 MP). "Before" is the revision before the limits (its
inflate scanned the rest of the file once per gzip member); "after" is this tree. The peak RSS is
reset once the file is read, so MiB is what decoding it added. A "before" run is stopped at
--timeout seconds. `python -m bench.hostile` prints the table and writes docs/hostile.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.memory import _checkout, _status

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BEFORE = "c9934d7"  # main just before the decoder limits (issue 23)
MAX_BYTES, MAX_PIXELS = 50 * 1024 * 1024, 50_000_000
MIB = 1 << 20


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], bytes]
    worst: str  # before, for the worst file the limits allow: {t} its time, {mib} its memory
    scale: Callable[[float], float] = lambda size_mib: MAX_BYTES / MIB / size_mib  # before's growth
    gzip: bool = False
    before: bool = True  # False: too long to run (its row above scales it)


def _cases() -> list[Case]:
    from tests import hostile

    from .memory import photo

    small = hostile.progressive_jpeg(64, 48)
    linear = "{t} at 50 MiB (linear)"
    return [
        Case(
            "gzip: 1 MiB of empty members, then a JPEG",
            lambda: hostile.gzip_many_members(1, small),
            "{t} at 50 MiB (quadratic: the rest of the file is scanned once per member)",
            scale=lambda size: (MAX_BYTES / MIB / size) ** 2,
            gzip=True,
        ),
        Case(
            "gzip: 50 MiB of empty members, then a JPEG (after only)",
            lambda: hostile.gzip_many_members(50, small),
            "",
            gzip=True,
            before=False,
        ),
        Case(
            "JPEG 4000x3000: one 26-byte scan repeated, 1,000 scans",
            lambda: hostile.jpeg_many_scans(1000),
            "{t} at 50 MiB (2 million such scans; 4x that at 48 MP)",
            scale=lambda size: 2_000_000 / 1000,
        ),
        Case(
            "JPEG: 2,000,000 empty COM segments before the frame",
            lambda: hostile.jpeg_many_segments(2_000_000),
            "{t} and ~{mib} MiB at 50 MiB (linear)",
        ),
        Case(
            "JPEG: 9,000 APP1 Exif segments of 256 bytes",
            lambda: hostile.jpeg_many_exif_segments(9_000, 256),
            "over {t} at 50 MiB (Pillow joins them by copying: at least quadratic)",
            scale=lambda size: (MAX_BYTES / MIB / size) ** 2,
        ),
        Case("JPEG: 8 MiB of 0xFF fill before a marker", lambda: hostile.jpeg_fill_bytes(8 * MIB), linear),
        Case(
            "TIFF 1x1,000,000: one strip per row",
            lambda: hostile.tiff_many_strips(1, 1_000_000),
            "{t} and ~{mib} MiB at 50 MiB (linear)",
        ),
        Case("PNG: 1,000,000 empty chunks before IDAT", lambda: hostile.png_many_chunks(1_000_000), linear),
        Case(
            "TIFF with a 24 MiB ICC profile (a 161-point LUT)",
            lambda: hostile.icc_oversized(24),
            "{t} and ~{mib} MiB at 50 MiB (linear)",
        ),
        Case("GIF 1x1: 1,000,000 frames of 15 bytes", lambda: hostile.gif_many_frames(1_000_000), linear),
        Case(
            "PNG: eXIf of 65,535 tags, one of 10 million values",
            lambda: hostile.png_large_exif(65_535, longs=10_000_000),
            linear,
        ),
        Case(
            "BMP 4000x3000 RLE8: a pixel and an end-of-line per row",
            lambda: hostile.bmp_rle_rows(4000, 3000),
            "{t} at 50 MP (linear in pixels, decoded in Python)",
            scale=lambda size: 50 / 12,
        ),
        Case(
            "reference: progressive JPEG 4000x3000, quality 90",
            lambda: photo(4000, 3000, "progressive JPEG"),
            "",
        ),
        Case(
            "reference: TIFF 4000x3000 grey, one strip per row",
            lambda: hostile.tiff_many_strips(4000, 3000),
            "",
        ),
    ]


def run(code: str, path: str, gzip: bool) -> None:
    """Child process: decode one file with `code`'s imagen, as the worker would; report."""
    sys.path.insert(0, code)
    assert "imagen" not in sys.modules, "the run must import the revision's own imagen"
    from PIL import Image

    from imagen.cloud import objects
    from imagen.core.errors import BadInput
    from tools import images

    warm = io.BytesIO()
    Image.new("RGB", (64, 48)).save(warm, "JPEG")
    images.decode(warm.getvalue(), MAX_BYTES, MAX_PIXELS)  # imports and codecs warmed up
    data = Path(path).read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    base = _status("VmRSS")
    t0 = time.perf_counter()
    try:
        if gzip:
            data = objects.inflate(data, MAX_BYTES)
        images.decode(data, MAX_BYTES, MAX_PIXELS)
        ends = "accepted"
    except BadInput as exc:
        ends = f"BadInput: {exc}"
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "mib": (_status("VmHWM") - base) / MIB, "ends": ends}))


def _run(code: Path, path: Path, gzip: bool, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.hostile", "run", str(code), str(path)] + (["--gzip"] if gzip else [])
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {
            "seconds": timeout,
            "mib": None,
            "ends": f"still running after {timeout:.0f} s",
            "stopped": True,
        }
    if proc.returncode != 0:
        return {
            "seconds": None,
            "mib": None,
            "ends": "error: " + " ".join(proc.stderr.strip().splitlines()[-1:]),
        }
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _checks(path: Path, gzip: bool) -> str:
    """Seconds the pre-decoding checks alone take on the file (this tree, in this process)."""
    from imagen.core.errors import BadInput
    from imagen.image import decoder_limits

    if gzip:
        return "—"
    data = path.read_bytes()
    t0 = time.perf_counter()
    with contextlib.suppress(BadInput):
        decoder_limits.check_bytes(data)
    return f"{time.perf_counter() - t0:.3f}"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "<1 s"
    if seconds >= 5400:
        return f"~{seconds / 3600:,.0f} h"
    return f"~{seconds / 60:.0f} min" if seconds >= 120 else f"~{seconds:.0f} s"


def _worst(case: Case, size_mib: float, before: dict[str, Any]) -> str:
    if not case.worst or before.get("seconds") is None:
        return ""
    scale = case.scale(size_mib)
    mib = f"{max(before['mib'], 0) * scale:,.0f}" if before.get("mib") is not None else "?"
    return case.worst.format(t=_duration(before["seconds"] * scale), mib=mib)


def _secs(r: dict[str, Any]) -> str:
    if r.get("seconds") is None:
        return "—"
    return (">" if r.get("stopped") else "") + f"{r['seconds']:.3f}"


def _mib(r: dict[str, Any]) -> str:
    return "—" if r.get("mib") is None else f"{max(r['mib'], 0):.0f}"


def _line(row: dict[str, Any]) -> str:
    before, after = row["before"], row["after"]
    ratio = "—"
    if before.get("seconds") and after.get("seconds"):
        times = before["seconds"] / after["seconds"]
        ratio = (">" if before.get("stopped") else "") + (
            f"{times:,.0f}x" if times >= 10 else f"{times:.1f}x"
        )
    ends = after["ends"].replace("|", "/")
    return (
        f"| {row['name']} | {row['bytes']:,} | {row['checks']} | {_secs(before)} | {_mib(before)} | "
        f"{_secs(after)} | "
        f"{_mib(after)} | {ratio} | {ends} | {row['worst']} |"
    )


HEADER = [
    "| crafted file | bytes | checks s | before s | before MiB | after s | after MiB | before / after "
    "| how it ends after | before, at the limit |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def table(before_rev: str, timeout: float, only: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"before": _checkout(before_rev, Path(tmp)), "after": ROOT / "functions"}
        for case in _cases():
            if only and only not in case.name:
                continue
            path = Path(tmp) / "case.bin"
            path.write_bytes(case.build())
            size = path.stat().st_size
            row: dict[str, Any] = {"name": case.name, "bytes": size, "checks": _checks(path, case.gzip)}
            for name, code in codes.items():
                if name == "before" and not case.before:
                    row[name] = {"seconds": None, "mib": None, "ends": "not run"}
                    continue
                row[name] = _run(code, path, case.gzip, timeout if name == "before" else 600)
            row["worst"] = _worst(case, size / MIB, row["before"])
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _versions() -> str:
    from PIL import __version__, features

    return f"Pillow {__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}, " + (
        f"LittleCMS {features.version('littlecms2')}, zlib {features.version('zlib')}"
    )


def _caps() -> list[str]:
    from imagen.image import decoder_limits as d

    return [
        "The caps (each far above what real files carry; the reasons are in the module):",
        "",
        f"- JPEG and MPO: {d.MAX_SCANS} scans (libjpeg-turbo's fuzzers use 100 with TJPARAM_SCANLIMIT), "
        f"{d.MAX_JPEG_SEGMENTS:,} marker segments, {d.MAX_EXIF_SEGMENTS} Exif segments, "
        f"{d.MAX_STRAY_BYTES >> 20} MiB of fill or junk before the first scan.",
        f"- TIFF (any format's tile list): {d.MAX_TILES:,} strips or tiles; {d.MAX_IFD_ENTRIES:,} entries "
        "in the first directory.",
        f"- PNG: {d.MAX_PNG_CHUNKS:,} chunks. ICC profiles: {d.MAX_ICC_BYTES >> 20} MiB.",
        "- gzip members: no cap; inflated in one pass (the padding is found once, from the end),",
        "  at a small cost a member (the 50 MiB row).",
        "- Not capped, linear at a small cost a byte or a pixel: GIF frames (counted), EXIF entries "
        "and values (read only when asked), RLE BMP (decoded by Pillow in Python, in proportion to "
        "its pixels).",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd")
    r = sub.add_parser("run")
    r.add_argument("code")
    r.add_argument("path")
    r.add_argument("--gzip", action="store_true")
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a 'before' run may take")
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    args = parser.parse_args()
    if args.cmd == "run":
        run(args.code, args.path, args.gzip)
        return 0
    print("\n".join(HEADER), flush=True)
    t0 = time.perf_counter()
    rows = table(args.before, args.timeout, args.only)
    lines = [
        "# Crafted files: decoder work before and after the limits",
        "",
        f"`python -m bench.hostile` (`nox -s hostile`), one run, {time.strftime('%Y-%m-%d')}, on this "
        f"machine: 2 cores, no GPU; {_versions()}. Before: `{args.before}`; after: this tree. Each "
        "file is decoded in a fresh process as the worker does (inflated when gzip-encoded, then "
        "probe and load) under production's limits, 50 MiB and 50 MP; MiB is the peak RSS that "
        "decoding added; checks s is the walk over the bytes alone that decides the caps, before "
        "Pillow opens the file. The last column scales the measured 'before' to the worst file "
        "the size limit allows, as the text says. Rows under a second vary by a few tenths between "
        "runs on this machine (the reference rows' ratio is that noise; what the checks add is "
        "their column). The caps and why: `functions/imagen/image/decoder_limits.py`.",
        "",
        *HEADER,
        *(_line(r) for r in rows),
        "",
        *_caps(),
        "",
        f"The whole run took {time.perf_counter() - t0:.0f} s.",
    ]
    if not args.only:
        (DOCS / "hostile.md").write_text("\n".join(lines) + "\n")
        print(f"\nwritten: {DOCS / 'hostile.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
