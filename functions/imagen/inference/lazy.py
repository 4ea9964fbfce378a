"""A model runner built on its first use: a function that never runs a model never imports numpy
or tritonclient (imagen.inference.runner brings both, and the image stack)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from imagen.core.models import ModelSpec
    from imagen.inference.runner import InferStats, ModelRunner


class LazyRunner:
    """Stands for the ModelRunner that `build` returns, built once (thread-safe) when first used."""

    def __init__(self, build: Callable[[], ModelRunner]) -> None:
        self._build = build
        self._runner: ModelRunner | None = None
        self._lock = threading.Lock()

    @classmethod
    def triton(cls, url: str, timeout_s: int, batch: int, concurrency: int) -> LazyRunner:
        """ModelRunner.triton(...) on first use."""

        def build() -> ModelRunner:
            from imagen.inference.runner import ModelRunner

            return ModelRunner.triton(url, timeout_s, batch, concurrency)

        return cls(build)

    @property
    def runner(self) -> ModelRunner:
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = self._build()
        return self._runner

    def ready(self) -> bool:
        """ModelRunner.ready."""
        return self.runner.ready()

    def strips(
        self,
        spec: ModelSpec,
        pixels: np.ndarray,
        stats: InferStats,
        on_progress: Callable[[float], None] | None = None,
        jpeg_quality: int | None = None,
    ) -> Iterator[np.ndarray]:
        """ModelRunner.strips."""
        return self.runner.strips(spec, pixels, stats, on_progress, jpeg_quality)

    def mask(self, spec: ModelSpec, pixels: np.ndarray, stats: InferStats) -> np.ndarray:
        """ModelRunner.mask."""
        return self.runner.mask(spec, pixels, stats)
