"""SRResNet ×4 (Ledig et al.; the MSE-trained generator of krasserm's SRGAN) from its Keras HDF5
weights into our ONNX graph, and the same network in plain numpy as the reference it is checked
against (Keras's own layout and order of operations: NHWC, batch norm not folded, TensorFlow's
depth_to_space).

The network: 9×9 conv + PReLU; 16 residual blocks (conv, BN, PReLU, conv, BN, add); conv, BN,
add the first PReLU's output; twice conv to 4× the channels, pixel shuffle ×2, PReLU; 9×9 conv to
RGB, tanh. Input 0..1, output −1..1.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .graph import GraphBuilder

BN_EPSILON = 1e-3  # Keras's BatchNormalization default
RES_BLOCKS = 16


@dataclass(frozen=True)
class Layer:
    kind: str  # conv, bn, prelu
    weights: dict[str, np.ndarray]


def load(h5: bytes) -> list[Layer]:
    """The weighted layers of a Keras weights file, in the model's own order."""
    import h5py  # build-time only

    layers = []
    with h5py.File(io.BytesIO(h5), "r") as f:
        for raw in f.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            group = f[name]
            names = [w.decode() if isinstance(w, bytes) else str(w) for w in group.attrs["weight_names"]]
            if not names:
                continue
            weights = {n.split("/")[-1].split(":")[0]: np.asarray(group[n], np.float32) for n in names}
            kind = "conv" if "kernel" in weights else "bn" if "gamma" in weights else "prelu"
            layers.append(Layer(kind, weights))
    return layers


def _take(layers: list[Layer]) -> Iterator[Layer]:
    yield from layers


# ---- ONNX ---------------------------------------------------------------------------------------
def _conv(b: GraphBuilder, x: str, conv: Layer, bn: Layer | None = None) -> str:
    kernel, bias = conv.weights["kernel"], conv.weights["bias"]  # [k, k, in, out], [out]
    w = kernel.transpose(3, 2, 0, 1).copy()
    if bn is not None:  # folded: BN(conv(x)) = conv'(x)
        scale = bn.weights["gamma"] / np.sqrt(bn.weights["moving_variance"] + BN_EPSILON)
        w *= scale[:, None, None, None]
        bias = (bias - bn.weights["moving_mean"]) * scale + bn.weights["beta"]
    k = kernel.shape[0]
    return b.op("Conv", [x, b.const(w, "w"), b.const(bias, "b")], pads=[k // 2] * 4)


def _prelu(b: GraphBuilder, x: str, layer: Layer) -> str:
    return b.op("PRelu", [x, b.const(layer.weights["alpha"].reshape(-1, 1, 1), "alpha")])


def emit(b: GraphBuilder, layers: list[Layer], x: str) -> str:
    """The network on x (float NCHW, 0..1); returns its output (−1..1)."""
    it = _take(layers)

    def nxt(kind: str) -> Layer:
        layer = next(it)
        if layer.kind != kind:
            raise ValueError(f"expected a {kind} layer, found {layer.kind}")
        return layer

    head = _prelu(b, _conv(b, x, nxt("conv")), nxt("prelu"))
    y = head
    for _ in range(RES_BLOCKS):
        t = _prelu(b, _conv(b, y, nxt("conv"), nxt("bn")), nxt("prelu"))
        y = b.op("Add", [y, _conv(b, t, nxt("conv"), nxt("bn"))])
    y = b.op("Add", [head, _conv(b, y, nxt("conv"), nxt("bn"))])
    for _ in range(2):
        y = b.op("DepthToSpace", [_conv(b, y, nxt("conv"))], blocksize=2, mode="DCR")
        y = _prelu(b, y, nxt("prelu"))
    y = b.op("Tanh", [_conv(b, y, nxt("conv"))])
    if next(it, None) is not None:
        raise ValueError("weights left over: not the SRResNet these were built for")
    return y


# ---- numpy reference (Keras semantics) ----------------------------------------------------------
def _np_conv(x: np.ndarray, layer: Layer) -> np.ndarray:
    """'same' convolution of x [H, W, C] by a Keras kernel [k, k, C, O]."""
    kernel, bias = layer.weights["kernel"], layer.weights["bias"]
    k = kernel.shape[0]
    p = k // 2
    padded = np.pad(x, ((p, p), (p, p), (0, 0)))
    h, w = x.shape[:2]
    out = np.zeros((h, w, kernel.shape[3]), np.float64)
    for dy in range(k):
        for dx in range(k):
            out += padded[dy : dy + h, dx : dx + w] @ kernel[dy, dx].astype(np.float64)
    return out + bias


def _np_bn(x: np.ndarray, layer: Layer) -> np.ndarray:
    wts = layer.weights
    return (x - wts["moving_mean"]) / np.sqrt(wts["moving_variance"] + BN_EPSILON) * wts["gamma"] + wts[
        "beta"
    ]


def _np_prelu(x: np.ndarray, layer: Layer) -> np.ndarray:
    alpha = layer.weights["alpha"].reshape(-1)
    return np.where(x >= 0, x, x * alpha)


def _np_depth_to_space(x: np.ndarray, bs: int) -> np.ndarray:
    """TensorFlow's: out[h*bs + i, w*bs + j, c] = in[h, w, (i*bs + j)*C + c]."""
    h, w, d = x.shape
    c = d // (bs * bs)
    return x.reshape(h, w, bs, bs, c).transpose(0, 2, 1, 3, 4).reshape(h * bs, w * bs, c)


def reference(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    """The network on one image x [H, W, 3] in 0..1, as Keras computes it; output −1..1."""
    it = _take(layers)
    head = _np_prelu(_np_conv(x, next(it)), next(it))
    y = head
    for _ in range(RES_BLOCKS):
        t = _np_prelu(_np_bn(_np_conv(y, next(it)), next(it)), next(it))
        y = y + _np_bn(_np_conv(t, next(it)), next(it))
    y = head + _np_bn(_np_conv(y, next(it)), next(it))
    for _ in range(2):
        y = _np_prelu(_np_depth_to_space(_np_conv(y, next(it)), 2), next(it))
    return np.tanh(_np_conv(y, next(it)))
