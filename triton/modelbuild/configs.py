"""Triton model configs read with Triton's own model_config protobuf, checked against one source.

The one source of every tensor's name, type and shape is the worker's model table
(imagen.models.MODELS); both configs of each model — config.pbtxt (GPU, native onnxruntime
backend) and configs/cpu.pbtxt (local stack, python backend) — and the built ONNX graph must
say the same.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from imagen.core.models import ModelSpec

REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"
CONFIGS = {"gpu": "config.pbtxt", "cpu": "configs/cpu.pbtxt"}
Tensors = dict[str, tuple[str, list[int]]]  # name → (Triton data type, dims without the batch)


def load(model: str, which: str) -> mc.ModelConfig:
    """Parse a config; an unknown field or a malformed value raises text_format.ParseError."""
    return text_format.Parse((REPOSITORY / model / CONFIGS[which]).read_text(), mc.ModelConfig())


def expected(spec: ModelSpec) -> tuple[Tensors, Tensors]:
    """The inputs and outputs the worker sends and reads, from its model table."""
    side = spec.size
    inputs: Tensors = {"IMAGE": ("TYPE_UINT8", [side, side, 3])}
    if spec.needs_position:
        inputs["POSITION"] = ("TYPE_FP32", [4])
    if spec.needs_levels:
        inputs["LEVELS"] = ("TYPE_FP32", [6])
    if spec.palette:
        inputs["PALETTE"] = ("TYPE_FP32", [spec.palette * 3])
    if spec.needs_noise:
        inputs["NOISE"] = ("TYPE_FP32", [1])
    channels = 1 if spec.output == "alpha" else 3
    outputs: Tensors = {"OUTPUT": ("TYPE_UINT8", [side * spec.scale, side * spec.scale, channels])}
    return inputs, outputs


def declared(config: mc.ModelConfig) -> tuple[Tensors, Tensors]:
    def table(items: list[mc.ModelInput] | list[mc.ModelOutput]) -> Tensors:
        return {t.name: (mc.DataType.Name(t.data_type), list(t.dims)) for t in items}

    return table(list(config.input)), table(list(config.output))


def onnx_io(model: str) -> tuple[Tensors, Tensors]:
    """The built graph's inputs and outputs, in Triton's terms (batch axis dropped)."""
    import onnx

    graph = onnx.load(str(REPOSITORY / model / "1" / "model.onnx"), load_external_data=False).graph
    types: dict[int, str] = {onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.FLOAT: "TYPE_FP32"}

    def table(values: list[onnx.ValueInfoProto]) -> Tensors:
        out: Tensors = {}
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_value for d in t.shape.dim]
            out[v.name] = (types.get(t.elem_type, str(t.elem_type)), dims[1:])
        return out

    return table(list(graph.input)), table(list(graph.output))
