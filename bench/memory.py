"""Worker memory and time per megapixel at phone-photo sizes, before and after streaming.

Each case runs in a fresh process: the worker's own path (decode, tiles, stitching, encode)
with the code of one revision, the model replaced by an identity of the model's shape (the
model runs in Triton, not in the worker; its speed is in the per-model table). The process's
peak RSS is reset after imports and a warm-up, so "job MiB" is what the job itself added.
`python -m bench.memory` prints the table and writes docs/memory.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BEFORE = "e85aeeb"  # main before bounded memory (issue 12): whole images decoded, stitched, encoded
SIZES = {1: (1152, 864), 12: (4000, 3000), 48: (8000, 6000)}
MODELS = ["upscale", "upscale_fidelity", "enhance", "style_comic", "style_aged", "background_remove"]
UPSCALE_MP = (1, 12)  # x4 of 48 MP is no result a CPU run can wait for
FORMATS = ["progressive JPEG", "WEBP", "PNG"]


def photo(width: int, height: int, fmt: str = "JPEG") -> bytes:
    """The phone-like photo, as a JPEG or re-encoded as another format the decoders treat apart."""
    from PIL import Image

    from emulators.fullsize import phone_photo  # not at import: a probe imports no `imagen` early

    data = phone_photo(width, height)
    if fmt == "JPEG":
        return data
    buf = io.BytesIO()
    im = Image.open(io.BytesIO(data))
    if fmt == "progressive JPEG":
        im.save(buf, "JPEG", quality=90, progressive=True, subsampling=0)
    else:
        im.save(buf, fmt, **({"quality": 90} if fmt == "WEBP" else {"compress_level": 1}))
    return buf.getvalue()


def _tiny() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


class Identity:
    """A transport that returns each tile at the model's output shape, instantly."""

    def infer(self, spec: Any, chunks: Iterable[Any], stats: Any) -> Iterator[list[np.ndarray]]:
        for images, _extras in chunks:
            stats.requests += 1
            stats.tiles += len(images)
            if spec.mode == "whole":
                yield [img[:, :, :1].copy() for img in images]
            else:
                yield [img.repeat(spec.scale, 0).repeat(spec.scale, 1) for img in images]


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _job(model: str, data: bytes) -> dict[str, Any]:
    """Run one job's worker path with whichever `imagen` is first on sys.path."""
    from imagen.core import models
    from imagen.image import imaging
    from imagen.inference.runner import InferStats, ModelRunner
    from tools import images

    specs = getattr(models, "TRITON_MODELS", models.MODELS)  # every Triton model, where a revision has more
    if model not in specs:
        raise SystemExit(f"{model}: not in this revision")
    spec, stats = specs[model], InferStats()
    runner = ModelRunner(Identity(), 8)
    if not hasattr(imaging, "probe"):  # before: whole arrays all the way
        pixels = images.decode(data, 10**9, 10**9).pixels
        out = images.run(runner, spec, pixels, stats)
        encoded = images.encode(out, spec.result_format)
        return {"bytes": len(encoded), "width": out.shape[1], "height": out.shape[0]}
    from imagen.core.config import Config
    from imagen.image import budget, encoding

    cfg = Config.from_env({"GOOGLE_CLOUD_PROJECT": "bench"})
    image, header = imaging.probe(data, 10**9, 10**9)
    plan = budget.plan(
        spec, header, len(data), budget.OutputLimits(cfg.max_output_pixels), 10**12, cfg.tile_batch, 4
    )
    decoded = imaging.load(image, header)
    del image

    class Count:
        n = 0

        def write(self, b: bytes, /) -> int:
            Count.n += len(b)
            return len(b)

    channels = 4 if spec.output == "alpha" else 3
    enc = encoding.open_encoder(
        Count(),
        spec.result_format,
        plan.model_width,
        plan.model_height,
        channels,
        (plan.width, plan.height) if plan.resized else None,
    )
    for strip in runner.strips(spec, decoded.pixels, stats):
        enc.write(strip)
    enc.close()
    return {"bytes": Count.n, "width": plan.width, "height": plan.height, "need_mib": plan.need_bytes >> 20}


def probe(code: str, model: str, path: str) -> None:
    """Child process: import `code`'s imagen, warm up, reset the peak, run, report."""
    sys.path.insert(0, code)
    assert "imagen" not in sys.modules, "the probe must import the revision's own imagen"
    _job(model, _tiny())  # imports, libvips and numpy warmed up
    data = Path(path).read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    base = _status("VmRSS")
    t0 = time.perf_counter()
    result = _job(model, data)
    result.update(seconds=time.perf_counter() - t0, base=base, peak=_status("VmHWM"))
    print(json.dumps(result))


def _checkout(rev: str, into: Path) -> Path:
    """`functions/` of a revision, extracted under `into`."""
    archive = subprocess.run(
        ["git", "archive", rev, "functions/imagen"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "functions"


def table(before: str) -> list[dict[str, Any]]:
    from emulators.stack import WORKER_MALLOC_ENV

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"before": _checkout(before, Path(tmp)), "after": ROOT / "functions"}
        for mp, (w, h) in SIZES.items():
            path = Path(tmp) / f"{mp}mp.jpg"
            path.write_bytes(photo(w, h))
            for model in MODELS:
                if model.startswith("upscale") and mp not in UPSCALE_MP:
                    continue
                row: dict[str, Any] = {"model": model, "mp": mp, "size": f"{w}x{h}"}
                for name, code in codes.items():
                    row[name] = _probe(code, model, path, WORKER_MALLOC_ENV)
                rows.append(row)
                print(_line(row), flush=True)
        for fmt in FORMATS:  # the decoders that hold more than Pillow's frame, at 12 MP
            path = Path(tmp) / "12mp.other"
            path.write_bytes(photo(*SIZES[12], fmt))
            row = {"model": "enhance", "mp": 12, "size": f"{SIZES[12][0]}x{SIZES[12][1]} {fmt}"}
            for name, code in codes.items():
                row[name] = _probe(code, "enhance", path, WORKER_MALLOC_ENV)
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _probe(code: Path, model: str, path: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memory", "probe", str(code), model, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},  # as the workers run, both revisions
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _fmt(r: dict[str, Any], mp: int) -> str:
    if "error" in r:
        return f"failed: {' '.join(r['error'])[:60]} | — | —"
    return f"{r['peak'] / 2**20:.0f} | {(r['peak'] - r['base']) / 2**20:.0f} | {r['seconds'] / mp:.2f}"


def _line(row: dict[str, Any]) -> str:
    after = row["after"]
    need = f"{after['need_mib']}" if "need_mib" in after else "—"
    return (
        f"| {row['model']} | {row['size']} ({row['mp']} MP) | {_fmt(row['before'], row['mp'])} | "
        f"{_fmt(after, row['mp'])} | {need} |"
    )


HEADER = [
    "| model | input | before: peak RSS MiB | before: job MiB | before: worker s/MP | "
    "after: peak RSS MiB | after: job MiB | after: worker s/MP | after: planned MiB |",
    "|---|---|---|---|---|---|---|---|---|",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("probe")
    p.add_argument("code")
    p.add_argument("model")
    p.add_argument("path")
    t = sub.add_parser("table")
    t.add_argument("--before", default=BEFORE)
    args = parser.parse_args()
    if args.cmd == "probe":
        probe(args.code, args.model, args.path)
        return 0
    before = getattr(args, "before", BEFORE)
    print("\n".join(HEADER), flush=True)
    rows = table(before)
    lines = [
        "# Worker memory at phone-photo sizes",
        "",
        f"`python -m bench.memory` (part of `nox -s bench`), one run, {time.strftime('%Y-%m-%d')}. "
        f"Before: `{before}`; after: this tree. Each case is a fresh process running the worker's "
        "path (decode, tiles, stitching, encode) with an identity in place of the model, which runs "
        "in Triton; job MiB is the peak RSS the job added after imports and a warm-up; worker s/MP "
        "is that path's own time per input megapixel (the models' speed is in benchmarks.md). "
        "Planned MiB is the budget module's estimate for the job, decided from the header.",
        "",
        *HEADER,
        *(_line(r) for r in rows),
    ]
    (DOCS / "memory.md").write_text("\n".join(lines) + "\n")
    (DOCS / "memory.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\nwritten: {DOCS / 'memory.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
