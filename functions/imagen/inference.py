"""Running a model on Triton over HTTP with uint8 binary tensors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from . import imaging, tracing
from .errors import Transient
from .models import ModelSpec
from .tiling import Stitcher, TileGrid

_local = threading.local()


def client(url: str, timeout_s: int, concurrency: int) -> httpclient.InferenceServerClient:
    """One Triton client per thread, created on first use and reused."""
    key = (url, timeout_s, concurrency)
    cached = getattr(_local, "clients", None)
    if cached is None:
        cached = _local.clients = {}
    if key not in cached:
        cached[key] = httpclient.InferenceServerClient(
            url, connection_timeout=timeout_s, network_timeout=timeout_s, concurrency=concurrency
        )
    return cached[key]


@dataclass
class InferStats:
    requests: int = 0
    tiles: int = 0
    wait_s: float = 0.0
    model_version: str = ""
    batches: list[int] = field(default_factory=list)


class TritonRunner:
    """Runs one model spec over whole images, tiling where the model is tiled."""

    def __init__(self, url: str, timeout_s: int, batch: int, concurrency: int) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.batch, self.concurrency = batch, concurrency

    def _send(
        self, spec: ModelSpec, images: np.ndarray, positions: np.ndarray | None, stats: InferStats
    ) -> list[np.ndarray]:
        c = client(self.url, self.timeout_s, self.concurrency)
        pending = []
        results: list[np.ndarray] = []
        started = time.perf_counter()
        try:
            for i in range(0, len(images), self.batch):
                chunk = np.ascontiguousarray(images[i : i + self.batch])
                inputs = [httpclient.InferInput("IMAGE", list(chunk.shape), "UINT8")]
                inputs[0].set_data_from_numpy(chunk, binary_data=True)
                if positions is not None:
                    pos = np.ascontiguousarray(positions[i : i + self.batch])
                    inputs.append(httpclient.InferInput("POSITION", list(pos.shape), "FP32"))
                    inputs[1].set_data_from_numpy(pos, binary_data=True)
                outputs = [httpclient.InferRequestedOutput("OUTPUT", binary_data=True)]
                pending.append(c.async_infer(spec.name, inputs, outputs=outputs))
                stats.batches.append(len(chunk))
                stats.requests += 1
                if len(pending) >= self.concurrency:
                    results.extend(self._collect(pending.pop(0), stats))
            while pending:
                results.extend(self._collect(pending.pop(0), stats))
        except InferenceServerException as exc:
            raise Transient(f"Triton {spec.name}: {exc.message()}") from exc
        except (OSError, TimeoutError) as exc:
            raise Transient(f"Triton unreachable at {self.url}: {exc}") from exc
        finally:
            stats.wait_s += time.perf_counter() - started
        stats.tiles += len(images)
        return results

    @staticmethod
    def _collect(request: httpclient.InferAsyncRequest, stats: InferStats) -> list[np.ndarray]:
        result = request.get_result()
        stats.model_version = str(result.get_response().get("model_version", ""))
        out = result.as_numpy("OUTPUT")
        if out is None:
            raise Transient("Triton returned no OUTPUT tensor")
        return list(out)

    def run(
        self,
        spec: ModelSpec,
        pixels: np.ndarray,
        stats: InferStats,
        on_progress: Callable[[float], None] | None = None,
    ) -> np.ndarray:
        """The model's output for a uint8 HxWx3 image: RGB (scaled) or RGBA for alpha models."""
        if spec.mode == "whole":
            h, w = pixels.shape[:2]
            small = imaging.resize(pixels, spec.size, spec.size)
            with tracing.span("triton.infer", attributes={"imagen.model": spec.name, "imagen.tiles": 1}):
                (mask,) = self._send(spec, small[None], None, stats)
            alpha = imaging.resize(mask, w, h)
            return np.concatenate([pixels, alpha], axis=2)
        grid = TileGrid(pixels.shape[0], pixels.shape[1], spec.size, spec.overlap)
        padded = grid.pad(pixels)
        stitcher = Stitcher(grid, spec.scale, 3)
        for i, y in enumerate(grid.ys):
            tiles = grid.row(padded, y)
            pos = grid.positions(y) if spec.needs_position else None
            with tracing.span(
                "triton.infer", attributes={"imagen.model": spec.name, "imagen.tiles": len(tiles)}
            ):
                outs = self._send(spec, tiles, pos, stats)
            stitcher.add_row(y, np.stack(outs))
            if on_progress:
                on_progress((i + 1) / len(grid.ys))
        return stitcher.result()
