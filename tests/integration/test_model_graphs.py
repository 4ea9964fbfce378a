"""The built ONNX graphs take and give exactly what the configs declare (what Triton's native
onnxruntime backend on the GPU requires: it maps tensors by name, type and shape)."""

from __future__ import annotations

from typing import Any

import pytest

from imagen.core.models import MODELS
from modelbuild import configs


@pytest.mark.parametrize("model", sorted(MODELS))
def test_graph_io_matches_the_config(triton: Any, model: str) -> None:
    assert configs.onnx_io(model) == configs.declared(configs.load(model, "gpu"))
