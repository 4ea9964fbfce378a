"""A small ONNX graph builder: named nodes, constants and inlined sub-models."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 11  # u2netp is an opset-11 graph; every graph here shares it.


class GraphBuilder:
    """Accumulates nodes and initializers; every tensor name is unique."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: object, hint: str = "c") -> str:
        arr = np.asarray(value)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def inline(self, model: onnx.ModelProto, inputs: dict[str, str], prefix: str) -> list[str]:
        """Copy another model's graph in, wiring its inputs to our tensors; returns its outputs."""
        graph = model.graph
        rename = {name: ours for name, ours in inputs.items()}

        def mapped(name: str) -> str:
            if not name:
                return name
            return rename.get(name, prefix + name)

        for init in graph.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(init)
            copy.name = mapped(init.name)
            self.initializers.append(copy)
        for node in graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = prefix + node.name if node.name else ""
            del copy.input[:]
            del copy.output[:]
            copy.input.extend(mapped(n) for n in node.input)
            copy.output.extend(mapped(n) for n in node.output)
            self.nodes.append(copy)
        return [mapped(o.name) for o in graph.output]

    def model(
        self,
        inputs: list[tuple[str, int, list[int | str]]],
        outputs: list[tuple[str, int, list[int | str]]],
        doc: str,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "imagen",
            [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
            [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="imagen-modelbuild",
            doc_string=doc,
        )
        model.ir_version = 7
        onnx.checker.check_model(model)
        return model


def uint8_nhwc_to_unit_nchw(b: GraphBuilder, x: str) -> str:
    """uint8 [N,H,W,3] → float32 [N,3,H,W] in 0..1."""
    f = b.op("Cast", [x], to=TensorProto.FLOAT)
    f = b.op("Div", [f, b.const(np.float32(255.0))])
    return b.op("Transpose", [f], perm=[0, 3, 1, 2])


def unit_nchw_to_uint8_nhwc(b: GraphBuilder, x: str, out: str) -> str:
    """float32 [N,C,H,W] in 0..1 → uint8 [N,H,W,C], rounded and clipped, named `out`."""
    f = b.op("Mul", [x, b.const(np.float32(255.0))])
    f = b.op("Round", [f])
    f = b.op("Clip", [f, b.const(np.float32(0.0)), b.const(np.float32(255.0))])
    f = b.op("Transpose", [f], perm=[0, 2, 3, 1])
    b.nodes.append(helper.make_node("Cast", [f], [out], to=TensorProto.UINT8))
    return out
