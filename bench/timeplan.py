"""The time plan against measured job times: every model at 1, 12 and 48 MP, in one run.

Two tables. The worker's own path (decode, tiles, stitching, encode, with an identity in place
of the model, as bench.memory runs it) at 1, 12 and 48 MP for every model, against the plan's
worker terms. Then whole jobs through the real Triton on this CPU (the local stack's
accelerator, TILE_SECONDS from emulators.settings) against the whole plan, for the sizes this
CPU can finish in minutes; the rest (upscale past 1 MP, enhance and comic at 48 MP) are counted
from the seconds a tile took at the measured sizes. Plans are for one job alone on the CPU
(a worker's share, WORKER_CONCURRENCY, multiplies the worker terms in production).
`python -m bench.timeplan` prints both and writes docs/timeplan.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.memory import SIZES, Identity, photo

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MODELS = ["upscale", "upscale_fidelity", "enhance", "style_comic", "style_aged", "background_remove"]
# Whole jobs through Triton on this CPU: what finishes in minutes (MP per model).
THROUGH_TRITON = {
    "upscale": (1,),
    "upscale_fidelity": (1,),
    "enhance": (1, 12),
    "style_comic": (1, 12),
    "style_aged": (1, 12, 48),
    "background_remove": (1, 12, 48),
}


@dataclass
class Case:
    model: str
    mp: int
    size: str
    tiles: int
    planned: dict[str, Any]  # the plan's terms (one job alone)
    seconds: float  # measured: the job's path, decode to the encoder's last byte
    infer_wait_s: float = 0.0


def run(model: str, mp: int, data: bytes, runner: Any, tile_seconds: dict[str, float]) -> Case:
    """One job's path (as the worker runs it) with `runner`, timed, and its plan."""
    from imagen.core.config import Config
    from imagen.core.models import TRITON_MODELS
    from imagen.image import budget, encoding, imaging, timeplan
    from imagen.inference.runner import InferStats

    spec, stats = TRITON_MODELS[model], InferStats()
    cfg = Config.from_env({"GOOGLE_CLOUD_PROJECT": "bench"})
    t0 = time.perf_counter()
    image, header = imaging.probe(data, 10**9, 10**9)
    plan = budget.plan(spec, header, len(data), budget.OutputLimits(cfg.max_output_pixels), 10**12, 8, 4)
    times = timeplan.plan(
        spec, header, (plan.width, plan.height, plan.scale), plan.format, tile_seconds, 1, 10**9
    )
    decoded = imaging.load(image, header)
    del image

    class Count:
        def write(self, b: bytes, /) -> int:
            return len(b)

    channels = 4 if spec.output == "alpha" else 3
    resized = (plan.width, plan.height) if plan.resized else None
    enc = encoding.open_encoder(
        Count(), plan.format.name, plan.model_width, plan.model_height, channels, resized
    )
    for strip in runner.strips(spec, decoded.pixels, stats):
        enc.write(strip)
    enc.close()
    seconds = time.perf_counter() - t0
    w, h = SIZES[mp]
    return Case(model, mp, f"{w}x{h}", times.tiles, times.record(), seconds, stats.wait_s)


def worker_rows(paths: dict[int, Path]) -> list[Case]:
    from imagen.core.models import GPU_TILE_SECONDS
    from imagen.inference.runner import ModelRunner

    runner = ModelRunner(Identity(), 8)
    run("style_aged", 1, paths[1].read_bytes(), runner, dict(GPU_TILE_SECONDS))  # warm-up
    rows = []
    for mp, path in paths.items():
        for model in MODELS:
            if model.startswith("upscale") and mp == 48:
                continue  # x4 of 48 MP is past MAX_OUTPUT_PIXELS: written smaller; not a CPU wait
            case = run(model, mp, path.read_bytes(), runner, dict(GPU_TILE_SECONDS))
            rows.append(case)
            print(_worker_line(case), flush=True)
    return rows


def triton_rows(paths: dict[int, Path]) -> tuple[list[Case], dict[str, float]]:
    from emulators.settings import LOCAL_TILE_SECONDS, StackSettings
    from emulators.stack import Stack
    from imagen.inference.runner import ModelRunner

    s = StackSettings.from_env()
    os.environ.update(s.client_env())
    rows: list[Case] = []
    per_tile: dict[str, float] = {}
    with Stack(s).session(lambda m: print(m, flush=True), only=("triton",)):
        runner = ModelRunner.triton(f"127.0.0.1:{s.triton_port}", 600, 8, 4)
        for model in MODELS:
            for mp in THROUGH_TRITON[model]:
                case = run(model, mp, paths[mp].read_bytes(), runner, dict(LOCAL_TILE_SECONDS))
                rows.append(case)
                per_tile[model] = case.infer_wait_s / case.tiles  # the largest measured size wins
                print(_triton_line(case), flush=True)
    return rows, per_tile


def _worker_line(c: Case) -> str:
    p = c.planned
    own = p["decode_s"] + p["prepare_s"] + p["encode_s"]
    ok = "yes" if own >= c.seconds else "NO"
    return (
        f"| {c.model} | {c.size} ({c.mp} MP) | {c.tiles} | {own:.2f} | {c.seconds:.2f} | "
        f"{own / c.seconds:.1f} | {ok} |"
    )


def _triton_line(c: Case) -> str:
    p = c.planned
    ok = "yes" if p["total_s"] >= c.seconds else "NO"
    return (
        f"| {c.model} | {c.size} ({c.mp} MP) | {c.tiles} | {p['total_s']:.1f} | {c.seconds:.1f} | "
        f"{c.infer_wait_s / c.tiles:.3f} | {p['tile_s']:g} | {p['total_s'] / c.seconds:.1f} | {ok} |"
    )


WORKER_HEADER = [
    "| model | input | tiles | planned worker s | measured worker s | plan / measured | plan ≥ measured |",
    "|---|---|---|---|---|---|---|",
]
TRITON_HEADER = [
    "| model | input | tiles | planned s | measured s | measured s/tile | planned s/tile | plan / measured "
    "| plan ≥ measured |",
    "|---|---|---|---|---|---|---|---|---|",
]


def extrapolated(per_tile: dict[str, float], measured: list[Case]) -> list[str]:
    """Jobs too long to run here: the plan against the tiles times the measured seconds a tile."""
    from emulators.settings import LOCAL_TILE_SECONDS
    from imagen.core.models import TRITON_MODELS
    from imagen.image import timeplan

    done = {(c.model, c.mp) for c in measured}
    lines = []
    for model in MODELS:
        for mp, (w, h) in SIZES.items():
            if (model, mp) in done or (model.startswith("upscale") and mp == 48):
                continue
            spec = TRITON_MODELS[model]
            n = timeplan.tiles(spec, w, h)
            planned = n * LOCAL_TILE_SECONDS[model]
            counted = n * per_tile[model]
            ok = "yes" if planned >= counted else "NO"
            lines.append(
                f"| {model} | {w}x{h} ({mp} MP) | {n} | {planned:.0f} | {counted:.0f} | "
                f"{planned / counted:.1f} | {ok} |"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-triton", action="store_true", help="only the worker's own path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for mp, (w, h) in SIZES.items():
            paths[mp] = Path(tmp) / f"{mp}mp.jpg"
            paths[mp].write_bytes(photo(w, h))
        print("\n".join(WORKER_HEADER), flush=True)
        workers = worker_rows(paths)
        triton: list[Case] = []
        per_tile: dict[str, float] = {}
        if not args.no_triton:
            print("\n".join(TRITON_HEADER), flush=True)
            triton, per_tile = triton_rows(paths)
    rest = extrapolated(per_tile, triton) if per_tile else []
    lines = [
        "# The time plan against measured job times",
        "",
        f"`python -m bench.timeplan` (`nox -s timeplan`), one run, {time.strftime('%Y-%m-%d')}, this machine "
        "(2 cores, no GPU). Plans are `functions/imagen/image/timeplan.py`'s, made from the header alone, "
        "for one job alone on the CPU (in production each worker term is multiplied by WORKER_CONCURRENCY, "
        "the jobs sharing one vCPU). The plan must be at or above the measurement.",
        "",
        "## The worker's own path",
        "",
        "Decode, tiles, stitching and encode with an identity in place of the model (as `bench.memory` runs "
        "it); planned: the plan's decode, statistics, stitching and encoding terms.",
        "",
        *WORKER_HEADER,
        *(_worker_line(c) for c in workers),
    ]
    if triton:
        lines += [
            "",
            "## Whole jobs through Triton on this CPU",
            "",
            "The job's path from the file's bytes to the encoder's last byte, through the real Triton (CPU "
            "configs, the local stack's), planned with the local stack's TILE_SECONDS (this CPU's, doubled).",
            "",
            *TRITON_HEADER,
            *(_triton_line(c) for c in triton),
            "",
            "Too long to run here: the tiles at the seconds a tile took above, against the plan's "
            "tiles term.",
            "",
            "| model | input | tiles | planned Triton s | tiles x measured s/tile | plan / counted "
            "| plan ≥ counted |",
            "|---|---|---|---|---|---|---|",
            *rest,
        ]
    (DOCS / "timeplan.md").write_text("\n".join(lines) + "\n")
    (DOCS / "timeplan.json").write_text(
        json.dumps(
            {"worker": [c.__dict__ for c in workers], "triton": [c.__dict__ for c in triton]}, indent=1
        )
        + "\n"
    )
    print(f"\nwritten: {DOCS / 'timeplan.md'}")
    missed = [
        c
        for c in workers
        if c.planned["decode_s"] + c.planned["prepare_s"] + c.planned["encode_s"] < c.seconds
    ]
    missed += [c for c in triton if c.planned["total_s"] < c.seconds]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
