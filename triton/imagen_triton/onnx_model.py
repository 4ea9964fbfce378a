"""A Triton python-backend model that runs the model's ONNX graph with onnxruntime.

Requests in one execute() call are concatenated along the batch axis and run as a single
onnxruntime call, so Triton's dynamic batcher really batches. CUDA is used when the instance
is a GPU instance and onnxruntime has the CUDA provider; otherwise the CPU provider.

On CPU, `lanes` > 1 adds that many one-thread sessions: a batch is split among them and run
side by side, while a lone item still gets the multi-threaded session. Independent lanes do
not wait on each other at every operator, as the threads of one run do when another process
holds one of the cores.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


def _param(config: dict[str, Any], key: str, default: str) -> str:
    value = config.get("parameters", {}).get(key, {}).get("string_value")
    return str(value) if value else default


class OnnxModel:
    """Loads <version>/model.onnx once in initialize; one response per request in execute."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        folder = Path(args["model_repository"]) / args["model_version"]
        self.inputs = [i["name"] for i in config["input"]]
        self.output = config["output"][0]["name"]
        spinning = _param(config, "intra_op_spinning", "1")
        providers: list[Any] = ["CPUExecutionProvider"]
        gpu = args.get("model_instance_kind") == "GPU"
        if gpu and "CUDAExecutionProvider" in ort.get_available_providers():
            device = int(args.get("model_instance_device_id", "0"))
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device}))

        def session(threads: int) -> ort.InferenceSession:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            # Spinning threads keep a core busy after each run; on a small CPU host that core
            # is wanted by the rest of the pipeline (the functions, the emulators).
            opts.add_session_config_entry("session.intra_op.allow_spinning", spinning)
            return ort.InferenceSession(str(folder / "model.onnx"), opts, providers=providers)

        self.session = session(int(_param(config, "intra_op_threads", "0")))
        self.providers = self.session.get_providers()
        lanes = 1 if gpu else int(_param(config, "lanes", "1"))
        self.lanes = [session(1) for _ in range(lanes)] if lanes > 1 else []
        self.pool = ThreadPoolExecutor(lanes) if self.lanes else None

    def _run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(batch.values())))
        if self.pool is None or n < 2:
            return self.session.run([self.output], batch)[0]
        bounds = np.linspace(0, n, min(n, len(self.lanes)) + 1).astype(int)
        parts = self.pool.map(
            lambda i: self.lanes[i].run(
                [self.output], {k: v[bounds[i] : bounds[i + 1]] for k, v in batch.items()}
            )[0],
            range(len(bounds) - 1),
        )
        return np.concatenate(list(parts))

    def execute(self, requests: list[Any]) -> list[Any]:
        feeds: dict[str, list[np.ndarray]] = {name: [] for name in self.inputs}
        sizes = []
        for request in requests:
            for name in self.inputs:
                feeds[name].append(pb_utils.get_input_tensor_by_name(request, name).as_numpy())
            sizes.append(len(feeds[self.inputs[0]][-1]))
        batch = {name: np.concatenate(parts) for name, parts in feeds.items()}
        try:
            out = self._run(batch)
        except Exception as exc:  # one bad batch answers every request with the error
            error = pb_utils.TritonError(f"onnxruntime: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses = []
        offset = 0
        for n in sizes:
            tensor = pb_utils.Tensor(self.output, np.ascontiguousarray(out[offset : offset + n]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            offset += n
        return responses

    def finalize(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        self.session = None
