"""Each served graph on a GPU: tiles/s at batches 1 to 32 in fp32 and fp16, then images/s by size
and $ per 1,000 images at a T4's list price.

The backend is the best one present: onnxruntime's TensorRT provider (fp16: trt_fp16_enable,
engine cache on), its CUDA provider (fp16: the graph converted to float16, uint8 I/O kept),
PyTorch on CUDA through onnx2torch (fp16: autocast), else onnxruntime on the CPU, which only tests
the script: its figures are CPU figures, labelled so. Inputs are the served tile shapes (the
worker's model table, imagen.core.models), batches up to the config's max_batch_size; a timed run
is the whole call as Triton makes it, host to device and back. `python -m bench.gpu` (`nox -s gpu`)
prints the tables; `--json PATH` writes them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.memory import SIZES
from imagen.core.models import TRITON_MODELS, ModelSpec
from imagen.image.tiling import starts

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = ROOT / "triton" / "model_repository"
TRT_CACHE = ROOT / ".cache" / "trt"
MODELS = ["upscale", "upscale_fidelity", "enhance", "style_comic", "style_aged", "background_remove"]
BATCHES = (1, 2, 4, 8, 16, 32)
PRECISIONS = ("fp32", "fp16")
# A T4's on-demand list price: Compute Engine GPU pricing, us-central1, on-demand, ~$0.35 an hour
# (the figure terraform/README.md's monthly cost uses). The GPU alone: its host VM (n1-standard-4,
# ~$0.19 an hour there) is not in it.
T4_USD_PER_HOUR = 0.35

TRT, CUDA, TORCH, CPU = "ort-tensorrt", "ort-cuda", "torch-cuda", "ort-cpu"
GPU_BACKENDS = (TRT, CUDA, TORCH)
LABELS = {
    TRT: "onnxruntime TensorRT provider",
    CUDA: "onnxruntime CUDA provider",
    TORCH: "PyTorch CUDA (onnx2torch)",
    CPU: "onnxruntime CPU provider",
}
FP16_VIA = {TRT: "TensorRT", CUDA: "graph", TORCH: "autocast", CPU: "graph"}
FP16_NOTES = {
    TRT: "TensorRT builds fp16 engines from the fp32 graph (trt_fp16_enable; engines cached in .cache/trt)",
    CUDA: "the graph converted to float16 ({converter}), uint8 inputs and outputs kept",
    TORCH: "torch.autocast(float16) over the onnx2torch module",
    CPU: "the graph converted to float16 ({converter}), uint8 inputs and outputs kept",
}

Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


# -- the math -----------------------------------------------------------------------------------
def tiles_per_image(spec: ModelSpec, width: int, height: int) -> int:
    """The tiles (model inputs) a width x height image costs: imagen.image.timeplan.tiles, counted
    here from the tiling alone (that module imports the image decoders, which a bare GPU box
    lacks); tests/unit/test_gpu_bench.py keeps the two equal."""
    if spec.mode == "whole":
        return 1
    return len(starts(max(height, spec.size), spec.size, spec.overlap)) * len(
        starts(max(width, spec.size), spec.size, spec.overlap)
    )


def usd_per_1000(images_per_s: float, usd_per_hour: float) -> float:
    """Dollars for 1,000 images on a GPU rented at `usd_per_hour` and kept busy."""
    return usd_per_hour / 3600 / images_per_s * 1000


def batches_for(max_batch: int, wanted: Sequence[int]) -> list[int]:
    """The batch sizes asked for that the config serves (at most its max_batch_size)."""
    return sorted({b for b in wanted if 1 <= b <= max_batch})


def max_batch_size(config: Path) -> int:
    found = re.search(r"^max_batch_size:\s*(\d+)", config.read_text(), re.M)
    if not found:
        raise ValueError(f"{config}: no max_batch_size")
    return int(found[1])


def input_shapes(spec: ModelSpec) -> dict[str, tuple[tuple[int, ...], type[np.generic]]]:
    """The served inputs of one item (config.pbtxt's dims, from the worker's model table)."""
    shapes: dict[str, tuple[tuple[int, ...], type[np.generic]]] = {
        "IMAGE": ((spec.size, spec.size, 3), np.uint8)
    }
    if spec.needs_position:
        shapes["POSITION"] = ((4,), np.float32)
    if spec.needs_levels:
        shapes["LEVELS"] = ((6,), np.float32)
    if spec.palette:
        shapes["PALETTE"] = ((spec.palette * 3,), np.float32)
    if spec.needs_noise:
        shapes["NOISE"] = ((1,), np.float32)
    return shapes


def make_feeds(spec: ModelSpec, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch of plausible inputs: a noisy image, values in the ranges the worker sends."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for name, (shape, dtype) in input_shapes(spec).items():
        if dtype is np.uint8:
            feeds[name] = rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
        elif name == "LEVELS":  # per-channel low, then high (0..1)
            low, high = rng.uniform(0.0, 0.1, (batch, 3)), rng.uniform(0.9, 1.0, (batch, 3))
            feeds[name] = np.concatenate([low, high], axis=1).astype(np.float32)
        elif name == "NOISE":  # sigma / 255
            feeds[name] = np.full((batch, 1), 10 / 255, np.float32)
        else:
            feeds[name] = rng.uniform(0.0, 1.0, (batch, *shape)).astype(np.float32)
    return feeds


# -- the backend ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """What this machine offers: onnxruntime's providers, PyTorch's CUDA, onnx2torch."""

    providers: tuple[str, ...]
    torch_cuda: bool
    onnx2torch: str | None  # None: importable; else why not


def probe() -> Probe:
    providers: tuple[str, ...] = ()
    if importlib.util.find_spec("onnxruntime"):  # the torch path runs without it
        providers = tuple(importlib.import_module("onnxruntime").get_available_providers())
    torch_cuda = False
    if importlib.util.find_spec("torch"):
        torch_cuda = bool(importlib.import_module("torch").cuda.is_available())
    why: str | None = None
    if importlib.util.find_spec("onnx2torch") is None:
        why = "onnx2torch is not installed (pip install onnx2torch; it needs onnx and torchvision)"
    else:
        try:
            importlib.import_module("onnx2torch")
        except Exception as e:  # a torchvision that does not match torch fails at import
            why = f"onnx2torch does not import: {type(e).__name__}: {e}"
    return Probe(providers, torch_cuda, why)


def choose_backend(device: str, found: Probe) -> tuple[str, str]:
    """The backend for `device` (cpu, auto or gpu) and a line saying why: TensorRT > CUDA >
    PyTorch CUDA > CPU. SystemExit for gpu with no GPU backend."""
    if device == "cpu":
        return CPU, "--device cpu"
    if "TensorrtExecutionProvider" in found.providers:
        return TRT, "onnxruntime has the TensorRT provider"
    if "CUDAExecutionProvider" in found.providers:
        return CUDA, "onnxruntime has the CUDA provider"
    if found.torch_cuda and found.onnx2torch is None:
        return TORCH, "onnxruntime has no GPU provider; PyTorch has CUDA and onnx2torch converts the graphs"
    why = f"onnxruntime's providers: {', '.join(found.providers) or 'none (not installed)'}; "
    if not found.torch_cuda:
        why += "PyTorch with CUDA: none" + (f"; {found.onnx2torch}" if found.onnx2torch else "")
    else:
        why += f"PyTorch has CUDA but {found.onnx2torch}"
    if device == "gpu":
        raise SystemExit(f"no GPU backend: {why}")
    return CPU, f"no GPU backend: {why}"


def float16_converter() -> str:
    """The float16 converter: onnxconverter-common's where installed, else the copy onnxruntime
    ships."""
    if importlib.util.find_spec("onnxconverter_common"):
        return "onnxconverter_common.float16"
    return "onnxruntime.transformers.float16"


def float16(model: Any) -> Any:
    """The graph in float16, its uint8 and float32 inputs and outputs kept."""
    return importlib.import_module(float16_converter()).convert_float_to_float16(model, keep_io_types=True)


def crd_depth_to_space(model: Any) -> Any:
    """The graph with each DepthToSpace in DCR mode (onnx2torch converts only CRD) rewritten as a
    channel Gather and a CRD DepthToSpace: DCR(x) = CRD(x[:, perm]). Returns a copy."""
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    shapes = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    shapes.update({v.name: v for v in model.graph.input})
    nodes = []
    for i, node in enumerate(out.graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        mode = attrs.get("mode", b"DCR")
        if node.op_type != "DepthToSpace" or (mode.decode() if isinstance(mode, bytes) else mode) != "DCR":
            nodes.append(node)
            continue
        b = int(attrs["blocksize"])
        channels = shapes[node.input[0]].type.tensor_type.shape.dim[1].dim_value
        if not channels:
            raise ValueError(f"DepthToSpace {node.name or i}: its input's channels are not known")
        c = channels // (b * b)
        # CRD reads channel c*b*b + i*b + j where DCR reads (i*b + j)*c + ch.
        perm = np.array([(k % (b * b)) * c + k // (b * b) for k in range(channels)], np.int64)
        name = f"_crd_perm_{i}"
        out.graph.initializer.append(numpy_helper.from_array(perm, name))
        nodes.append(helper.make_node("Gather", [node.input[0], name], [name + "_x"], axis=1))
        nodes.append(
            helper.make_node("DepthToSpace", [name + "_x"], list(node.output), blocksize=b, mode="CRD")
        )
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def ort_runner(model: bytes, providers: list[Any]) -> tuple[Runner, str]:
    """An onnxruntime session's run, and the provider the session actually took."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=providers)

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(session.run(None, feeds)[0])

    return run, session.get_providers()[0]


def torch_runner(model: Any, fp16: bool, device: str = "cuda") -> Runner:
    """The graph as a PyTorch module on `device` (onnx2torch); fp16 under autocast."""
    torch = importlib.import_module("torch")
    onnx2torch = importlib.import_module("onnx2torch")
    module = onnx2torch.convert(crd_depth_to_space(model)).to(device).eval()
    names = [i.name for i in model.graph.input]

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode(), torch.autocast(device, dtype=torch.float16, enabled=fp16):
            result = module(*(torch.from_numpy(feeds[n]).to(device) for n in names))
            return np.asarray(result.cpu().numpy())  # .cpu() waits for the GPU

    return run


def make_runner(backend: str, path: Path, precision: str) -> tuple[Runner, str, str]:
    """The run function for one graph, the provider that runs it, and how fp16 is made ("")."""
    import onnx

    fp16 = precision == "fp16"
    if backend == TORCH:
        return torch_runner(onnx.load(str(path)), fp16), "CUDA (PyTorch)", FP16_VIA[TORCH] if fp16 else ""
    if backend == TRT:
        TRT_CACHE.mkdir(parents=True, exist_ok=True)
        options = {
            "trt_fp16_enable": fp16,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(TRT_CACHE),
        }
        providers: list[Any] = [("TensorrtExecutionProvider", options), "CUDAExecutionProvider"]
        run, used = ort_runner(path.read_bytes(), [*providers, "CPUExecutionProvider"])
        return run, used, FP16_VIA[TRT] if fp16 else ""
    providers = ["CUDAExecutionProvider"] if backend == CUDA else []
    model = float16(onnx.load(str(path))).SerializeToString() if fp16 else path.read_bytes()
    run, used = ort_runner(model, [*providers, "CPUExecutionProvider"])
    return run, used, FP16_VIA[backend] if fp16 else ""


# -- the run --------------------------------------------------------------------------------------
@dataclass
class Row:
    model: str
    backend: str
    provider: str  # what the session took (a CUDA session can fall back to the CPU)
    precision: str
    fp16_via: str
    batch: int
    ms_per_batch: float | None  # the median of the timed runs; None: not run
    tiles_per_s: float | None
    runs: int
    status: str = "ok"


@dataclass
class Summary:
    model: str
    precision: str
    batch: int  # the batch with the most tiles/s
    tiles_per_s: float
    tiles_per_image: dict[int, int]  # by megapixels (bench.memory.SIZES)
    images_per_s: dict[int, float]
    usd_per_1000: dict[int, float]
    max_diff_vs_fp32: int | None = None  # fp16's output against fp32's, uint8 levels, batch 1
    gain_vs_fp32: float | None = None


@dataclass
class Report:
    backend: str
    why: str
    device: str
    gpu: bool
    usd_per_hour: float
    sizes: dict[int, tuple[int, int]]
    fp16: str = ""  # how fp16 is made on this backend
    rows: list[Row] = field(default_factory=list)
    summary: list[Summary] = field(default_factory=list)


def time_runs(
    run: Runner, feeds: dict[str, np.ndarray], warmup: int, repeats: int, budget_s: float
) -> list[float]:
    """Seconds of each timed run after `warmup` untimed ones; at least one timed run, more while
    the budget lasts, at most `repeats`."""
    for _ in range(warmup):
        run(feeds)
    times: list[float] = []
    end = time.perf_counter() + budget_s
    while len(times) < max(1, repeats) and (not times or time.perf_counter() < end):
        t0 = time.perf_counter()
        run(feeds)
        times.append(time.perf_counter() - t0)
    return times


def bench_model(
    name: str,
    spec: ModelSpec,
    path: Path,
    backend: str,
    batches: Sequence[int],
    precisions: Sequence[str],
    warmup: int,
    repeats: int,
    max_seconds: float,
    log: Callable[[str], None] = print,
) -> tuple[list[Row], dict[str, np.ndarray]]:
    """Every (precision, batch) of one graph within `max_seconds` (a case that would pass it, by
    the seconds a tile took at the batch before, is skipped), and each precision's batch-1 output."""
    deadline = time.perf_counter() + max_seconds
    feeds = {b: make_feeds(spec, b) for b in batches}
    rows: list[Row] = []
    first: dict[str, np.ndarray] = {}

    def add(row: Row) -> None:
        rows.append(row)
        log(row_line(row))

    for precision in precisions:
        cases = len(batches)
        if time.perf_counter() >= deadline:
            for b in batches:
                add(_skipped(name, backend, precision, b, "skipped: over --max-seconds"))
            continue
        try:
            run, provider, via = make_runner(backend, path, precision)
        except Exception as e:  # a graph the backend cannot take: say so and go on
            why = f"failed: {type(e).__name__}: {e}"
            for b in batches:
                add(_skipped(name, backend, precision, b, why))
            continue
        per_tile = 0.0
        for n, batch in enumerate(batches):
            left = deadline - time.perf_counter()
            if per_tile * batch * (warmup + 1) > left or left <= 0:
                add(_skipped(name, backend, precision, batch, "skipped: over --max-seconds"))
                continue
            try:
                if batch == 1:
                    first[precision] = run(feeds[batch])
                times = time_runs(run, feeds[batch], warmup, repeats, left / (2 * (cases - n)))
            except Exception as e:
                add(_skipped(name, backend, precision, batch, f"failed: {type(e).__name__}: {e}"))
                continue
            seconds = statistics.median(times)
            per_tile = seconds / batch
            add(
                Row(
                    name, backend, provider, precision, via, batch, seconds * 1e3, batch / seconds, len(times)
                )
            )
    return rows, first


def _skipped(name: str, backend: str, precision: str, batch: int, status: str) -> Row:
    status = " ".join(status.split()).replace("|", "/")[:200]  # one table cell
    return Row(name, backend, "", precision, "", batch, None, None, 0, status)


def summarise(
    rows: Sequence[Row],
    first: dict[str, dict[str, np.ndarray]],
    specs: dict[str, ModelSpec],
    sizes: dict[int, tuple[int, int]],
    usd_per_hour: float,
) -> list[Summary]:
    """Per model and precision: the best batch's tiles/s, images/s by size and $ per 1,000."""
    out: list[Summary] = []
    best: dict[tuple[str, str], Row] = {}
    for r in rows:
        key = (r.model, r.precision)
        if r.tiles_per_s and (key not in best or r.tiles_per_s > (best[key].tiles_per_s or 0)):
            best[key] = r
    for (model, precision), r in best.items():
        assert r.tiles_per_s is not None
        tiles = {mp: tiles_per_image(specs[model], w, h) for mp, (w, h) in sizes.items()}
        images = {mp: r.tiles_per_s / n for mp, n in tiles.items()}
        s = Summary(
            model,
            precision,
            r.batch,
            r.tiles_per_s,
            tiles,
            images,
            {mp: usd_per_1000(i, usd_per_hour) for mp, i in images.items()},
        )
        outs = first.get(model, {})
        if precision != "fp32" and "fp32" in outs and precision in outs:
            s.max_diff_vs_fp32 = int(np.abs(outs[precision].astype(int) - outs["fp32"].astype(int)).max())
        if precision != "fp32" and (model, "fp32") in best:
            s.gain_vs_fp32 = r.tiles_per_s / (best[(model, "fp32")].tiles_per_s or 1)
        out.append(s)
    return out


# -- the tables -----------------------------------------------------------------------------------
ROW_HEADER = ["| model | backend | precision | batch | ms/batch | tiles/s |", "|---|---|---|---|---|---|"]


def _precision(r: Row) -> str:
    return f"{r.precision} ({r.fp16_via})" if r.fp16_via else r.precision


def row_line(r: Row) -> str:
    if r.ms_per_batch is None or r.tiles_per_s is None:
        return f"| {r.model} | {r.backend} | {_precision(r)} | {r.batch} | {r.status} | |"
    return (
        f"| {r.model} | {r.backend} | {_precision(r)} | {r.batch} | {r.ms_per_batch:.2f} | "
        f"{r.tiles_per_s:.1f} |"
    )


def _num(x: float) -> str:
    """Three significant figures, no exponent from 0.001 up, thousands grouped."""
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if x >= 0.001 else f"{x:.1e}"


def summary_lines(report: Report) -> list[str]:
    mps = list(report.sizes)
    head = (
        "| model | precision | best batch | tiles/s | "
        + " | ".join(f"tiles at {mp} MP" for mp in mps)
        + " | "
        + " | ".join(f"images/s at {mp} MP" for mp in mps)
        + " | "
        + " | ".join(f"$ / 1,000 at {mp} MP" for mp in mps)
        + " | fp16 gain | fp16 max diff |"
    )
    lines = [head, "|" + "---|" * (6 + 3 * len(mps))]
    for s in report.summary:
        gain = f"×{s.gain_vs_fp32:.2f}" if s.gain_vs_fp32 is not None else ""
        diff = str(s.max_diff_vs_fp32) if s.max_diff_vs_fp32 is not None else ""
        lines.append(
            f"| {s.model} | {s.precision} | {s.batch} | {_num(s.tiles_per_s)} | "
            + " | ".join(str(s.tiles_per_image[mp]) for mp in mps)
            + " | "
            + " | ".join(_num(s.images_per_s[mp]) for mp in mps)
            + " | "
            + " | ".join(_num(s.usd_per_1000[mp]) for mp in mps)
            + f" | {gain} | {diff} |"
        )
    return lines


def describe_device(backend: str) -> str:
    if backend in GPU_BACKENDS:
        if importlib.util.find_spec("torch"):
            torch = importlib.import_module("torch")
            if torch.cuda.is_available():
                return f"GPU: {torch.cuda.get_device_name(0)}"
        return "GPU (name unknown: no PyTorch to ask)"
    cpu = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        cpu = found[1].strip() if found else cpu
    return f"CPU: {cpu}, {os.cpu_count()} cores"


def to_json(report: Report) -> dict[str, Any]:
    data = asdict(report)
    data["backend_label"] = LABELS[report.backend]
    data["price"] = "a T4's on-demand list price, us-central1 (Compute Engine GPU pricing), the GPU alone"
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS, metavar="MODEL")
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per case")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case, at most")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time budget per model")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "gpu"], default="auto", help="gpu: fail without one"
    )
    parser.add_argument("--repo", type=Path, default=REPOSITORY, help="the model repository")
    parser.add_argument("--usd-per-hour", type=float, default=T4_USD_PER_HOUR, help="the GPU's price")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    backend, why = choose_backend(args.device, probe())
    report = Report(
        backend,
        why,
        describe_device(backend),
        backend in GPU_BACKENDS,
        args.usd_per_hour,
        dict(SIZES),
    )
    print(f"backend: {LABELS[backend]} ({why})\ndevice: {report.device}", flush=True)
    if "fp16" in args.precisions:
        report.fp16 = FP16_NOTES[backend].format(converter=float16_converter())
        print(f"fp16: {report.fp16}", flush=True)
    if not report.gpu:
        print("NOTE: CPU figures, not GPU figures: they test the script", flush=True)
    print("\n".join(ROW_HEADER), flush=True)
    first: dict[str, dict[str, np.ndarray]] = {}
    for name in args.models:
        path = args.repo / name / "1" / "model.onnx"
        if not path.exists():
            print(f"{name}: {path} is missing (`nox -s models` builds it)", file=sys.stderr)
            return 1
        batches = batches_for(max_batch_size(args.repo / name / "config.pbtxt"), args.batches)
        rows, first[name] = bench_model(
            name,
            TRITON_MODELS[name],
            path,
            backend,
            batches,
            args.precisions,
            args.warmup,
            args.repeats,
            args.max_seconds,
            lambda line: print(line, flush=True),
        )
        report.rows += rows
    report.summary = summarise(report.rows, first, TRITON_MODELS, report.sizes, args.usd_per_hour)
    print(
        f"\nBest batch per model and precision; $ per 1,000 images at ${args.usd_per_hour:g}/h "
        f"(a T4's on-demand list price; measured on {report.device})"
    )
    print("\n".join(summary_lines(report)), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(report), indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
