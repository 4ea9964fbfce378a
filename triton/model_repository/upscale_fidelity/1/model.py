"""Triton model 'upscale_fidelity': runs 1/model.onnx, built by triton/modelbuild (see BUILD.json)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # triton/, for imagen_triton

from imagen_triton.onnx_model import OnnxModel as TritonPythonModel  # noqa: E402

__all__ = ["TritonPythonModel"]
