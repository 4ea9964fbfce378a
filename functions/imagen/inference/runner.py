"""Running a model on Triton over HTTP with uint8 binary tensors."""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from imagen.core import tracing
from imagen.core.errors import ServiceDown, Transient
from imagen.core.models import ModelSpec
from imagen.core.options import Options
from imagen.image import compose, imaging
from imagen.image.tiling import Stitcher, TileGrid

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


def image_levels(pixels: np.ndarray) -> np.ndarray:
    """Per-channel 0.5th and 99.5th percentiles (0..1) of the whole image, from a ≤256 px view."""
    step = max(1, max(pixels.shape[:2]) // 256)
    sample = pixels[::step, ::step].reshape(-1, 3).astype(np.float32) / 255
    low, high = np.percentile(sample, [0.5, 99.5], axis=0)
    return np.concatenate([low, high]).astype(np.float32)[None]


NOISE_FLOOR = 2.5  # what Immerkaer's estimate reads on a clean photo's own fine texture (luma)
LUMA_NOISE = float(np.sqrt(0.299**2 + 0.587**2 + 0.114**2))  # luma's share of per-channel noise


def image_noise(pixels: np.ndarray, jpeg_quality: int | None = None) -> np.ndarray:
    """The image's noise level (sigma/255) for the denoiser, as [1, 1]: the larger of what its
    JPEG compression implies (nothing from quality 90, sigma 20 at quality 15) and its pixels'
    own noise (Immerkaer's estimate on the luma of a central crop at full size, above the floor
    a clean photo's texture reads), so a clean photo is left alone."""
    from_jpeg = 0.0 if jpeg_quality is None else 20.0 * min(1.0, max(0.0, (90 - jpeg_quality) / 75))
    h, w = pixels.shape[:2]
    side = 768
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    crop = pixels[y0 : y0 + side, x0 : x0 + side].astype(np.float32)
    luma = crop @ np.array([0.299, 0.587, 0.114], np.float32)
    if min(luma.shape) < 3:
        return np.array([[from_jpeg / 255]], np.float32)
    lap = (
        luma[:-2, :-2] - 2 * luma[:-2, 1:-1] + luma[:-2, 2:]
        - 2 * luma[1:-1, :-2] + 4 * luma[1:-1, 1:-1] - 2 * luma[1:-1, 2:]
        + luma[2:, :-2] - 2 * luma[2:, 1:-1] + luma[2:, 2:]
    )  # fmt: skip
    estimate = float(np.sqrt(np.pi / 2) * np.abs(lap).mean() / 6)
    # less the floor in quadrature; luma carries 0.668 of independent per-channel noise
    from_pixels = np.sqrt(max(0.0, estimate**2 - NOISE_FLOOR**2)) / LUMA_NOISE
    sigma = max(from_jpeg, min(50.0, float(from_pixels)))
    return np.array([[sigma / 255]], np.float32)


def image_palette(pixels: np.ndarray, k: int, iterations: int = 12) -> np.ndarray:
    """The image's own k colours (k-means on a ≤256 px view, fixed seed), 0..1, darkest first,
    as [1, k*3]: every tile of an image gets the same palette."""
    step = max(1, max(pixels.shape[:2]) // 256)
    sample = pixels[::step, ::step].reshape(-1, 3).astype(np.float32) / 255
    rng = np.random.default_rng(0)
    centres = sample[rng.choice(len(sample), 1)]
    while len(centres) < k:  # k-means++: each next centre far from those chosen
        d = ((sample[:, None] - centres[None]) ** 2).sum(axis=2).min(axis=1)
        if d.sum() <= 0:
            centres = np.concatenate([centres, centres[-1:]])
            continue
        centres = np.concatenate([centres, sample[rng.choice(len(sample), 1, p=d / d.sum())]])
    for _ in range(iterations):
        nearest = ((sample[:, None] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        for j in range(k):
            members = sample[nearest == j]
            if len(members):
                centres[j] = members.mean(axis=0)
    order = np.argsort(centres @ np.array([0.299, 0.587, 0.114], np.float32), kind="stable")
    return centres[order].reshape(1, -1).astype(np.float32)


@dataclass
class InferStats:
    requests: int = 0
    tiles: int = 0
    wait_s: float = 0.0  # blocked on Triton's answers (its busy retries' waits included)
    busy_retries: int = 0  # requests Triton refused as busy and that were sent again
    model_version: str = ""
    batches: list[int] = field(default_factory=list)


Chunk = tuple[np.ndarray, dict[str, np.ndarray]]  # a stack of images and extra FP32 inputs


class Transport(Protocol):
    """Runs chunks through a model: Triton over HTTP in production, anything else in a bench."""

    def infer(
        self, spec: ModelSpec, chunks: Iterable[Chunk], stats: InferStats
    ) -> Iterator[list[np.ndarray]]:
        """Each chunk's outputs, in submission order."""
        ...


class TritonTransport:
    """Triton over HTTP with uint8 binary tensors, up to `concurrency` requests in flight."""

    def __init__(self, url: str, timeout_s: int, concurrency: int) -> None:
        self.url, self.timeout_s, self.concurrency = url, timeout_s, concurrency

    def infer(
        self, spec: ModelSpec, chunks: Iterable[Chunk], stats: InferStats
    ) -> Iterator[list[np.ndarray]]:
        """Send each (images, extra FP32 inputs) chunk as one request.

        Yields each chunk's outputs in submission order, so tile rows keep flowing into the
        batcher while earlier rows are stitched.
        """
        c = client(self.url, self.timeout_s, self.concurrency)
        pending: deque[tuple[Any, Callable[[], Any]]] = deque()
        try:
            for images, extras in chunks:
                images = np.ascontiguousarray(images)
                inputs = [httpclient.InferInput("IMAGE", list(images.shape), "UINT8")]
                inputs[0].set_data_from_numpy(images, binary_data=True)
                for name, values in extras.items():
                    extra = np.ascontiguousarray(values, dtype=np.float32)
                    inputs.append(httpclient.InferInput(name, list(extra.shape), "FP32"))
                    inputs[-1].set_data_from_numpy(extra, binary_data=True)
                outputs = [httpclient.InferRequestedOutput("OUTPUT", binary_data=True)]
                resend = functools.partial(c.async_infer, spec.name, inputs, outputs=outputs)
                pending.append((resend(), resend))
                stats.batches.append(len(images))
                stats.requests += 1
                stats.tiles += len(images)
                if len(pending) >= self.concurrency:
                    yield self._collect(*pending.popleft(), stats)
            while pending:
                yield self._collect(*pending.popleft(), stats)
        except InferenceServerException as exc:
            raise triton_fault(spec.name, exc) from exc
        except (OSError, TimeoutError) as exc:
            raise ServiceDown("triton", f"Triton unreachable at {self.url}: {exc}") from exc

    @staticmethod
    def _collect(
        request: httpclient.InferAsyncRequest,
        resend: Callable[[], httpclient.InferAsyncRequest],
        stats: InferStats,
    ) -> list[np.ndarray]:
        """The request's outputs; refused as busy, it is sent again after BUSY_RETRIES_S."""
        started = time.perf_counter()
        try:
            for delay in (*BUSY_RETRIES_S, None):
                try:
                    result = request.get_result()
                    break
                except InferenceServerException as exc:
                    if delay is None or not busy(exc):
                        raise
                    stats.busy_retries += 1
                    time.sleep(delay)
                    request = resend()
        finally:
            stats.wait_s += time.perf_counter() - started
        stats.model_version = str(result.get_response().get("model_version", ""))
        out = result.as_numpy("OUTPUT")
        if out is None:
            raise Transient("Triton returned no OUTPUT tensor")
        return list(out)


# What Triton says when it cannot take the work now: its queue policy refused the request (queue
# full, or it waited past the model's queue timeout), or the model is loading, gone or its
# backend process died (a restart). Any other error is about this request (it spends an attempt).
_BUSY_STATUSES = {"429", "502", "503", "504"}
_BUSY_WORDS = (
    "exceeds maximum queue size",
    "request timeout expired",
    "is not ready",
    "unknown model",
    "no available version",
    "is not healthy",
    "failed to connect",
)
# A request Triton refused as busy is sent again after these waits (seconds) before the job
# gives up and waits as a whole: a queue full for a moment at peak load costs seconds, not the
# tiles already done.
BUSY_RETRIES_S = (1.0, 2.0, 4.0, 8.0)


def busy(exc: InferenceServerException) -> bool:
    """Whether Triton refused the request for load or readiness, not for what it asked."""
    text = str(exc.message() or "").lower()
    return str(exc.status() or "") in _BUSY_STATUSES or any(w in text for w in _BUSY_WORDS)


def triton_fault(model: str, exc: InferenceServerException) -> Transient:
    """A Triton error as ServiceDown (busy or down: the job waits, its attempt kept) or Transient
    (an error of this job's request, which spends an attempt)."""
    text = str(exc.message() or "")
    if busy(exc):
        status = exc.status() or "no status"
        return ServiceDown("triton", f"Triton {model} is busy or down ({status}): {text}")
    return Transient(f"Triton {model}: {text}")


class ModelRunner:
    """Runs one model spec over whole images, tiling where the model is tiled."""

    def __init__(self, transport: Transport, batch: int) -> None:
        self.transport, self.batch = transport, batch

    def ready(self) -> bool:
        """Whether the server answers ready (GET /v2/health/ready); a transport with no server is."""
        url = getattr(self.transport, "url", None)
        if url is None:
            return True
        probe = httpclient.InferenceServerClient(url, connection_timeout=5, network_timeout=5)
        try:
            return bool(probe.is_server_ready())
        finally:
            probe.close()

    @classmethod
    def triton(cls, url: str, timeout_s: int, batch: int, concurrency: int) -> ModelRunner:
        return cls(TritonTransport(url, timeout_s, concurrency), batch)

    def _send(self, spec: ModelSpec, images: np.ndarray, stats: InferStats) -> list[np.ndarray]:
        """All outputs for a stack of same-shaped images, sent in batches of `batch`."""
        none: dict[str, np.ndarray] = {}
        chunks = ((images[i : i + self.batch], none) for i in range(0, len(images), self.batch))
        return [out for outs in self.transport.infer(spec, chunks, stats) for out in outs]

    def strips(
        self,
        spec: ModelSpec,
        pixels: np.ndarray,
        stats: InferStats,
        on_progress: Callable[[float], None] | None = None,
        jpeg_quality: int | None = None,
    ) -> Iterator[np.ndarray]:
        """The model's output for a uint8 HxWx3 image, as row strips from the top.

        `jpeg_quality`: the source's, when it was a JPEG (the denoiser's strength follows it).

        RGB (scaled) for tiled models, RGBA for alpha models. Only one tile row of output is
        ever held here, so memory follows the image's width, not its area.
        """
        if spec.mode == "whole":
            yield from self._whole(spec, pixels, stats)
            return
        grid = TileGrid(pixels.shape[0], pixels.shape[1], spec.size, spec.overlap, spec.margin)
        batch = spec.tile_batch(self.batch)
        stitcher = Stitcher(grid, spec.scale, 3)
        sent: deque[tuple[int, list[int], bool]] = deque()  # (row, columns, last of the row)
        levels = image_levels(pixels) if spec.needs_levels else None
        palette = image_palette(pixels, spec.palette) if spec.palette else None
        noise = image_noise(pixels, jpeg_quality) if spec.needs_noise else None

        def chunks() -> Iterator[Chunk]:
            for y in grid.ys:
                for i in range(0, len(grid.xs), batch):
                    xs = grid.xs[i : i + batch]
                    sent.append((y, xs, i + batch >= len(grid.xs)))
                    extras = {}
                    if spec.needs_position:
                        extras["POSITION"] = grid.positions(y, xs)
                    if levels is not None:
                        extras["LEVELS"] = np.tile(levels, (len(xs), 1))
                    if palette is not None:
                        extras["PALETTE"] = np.tile(palette, (len(xs), 1))
                    if noise is not None:
                        extras["NOISE"] = np.tile(noise, (len(xs), 1))
                    yield grid.tiles(pixels, y, xs), extras

        done_rows = 0
        with tracing.span("triton.infer", attributes={"imagen.model": spec.name}) as current:
            for outs in self.transport.infer(spec, chunks(), stats):
                y, xs, last = sent.popleft()
                for x, out in zip(xs, outs, strict=True):
                    stitcher.add(y, x, out)
                if last:
                    done_rows += 1
                    if on_progress:
                        on_progress(done_rows / len(grid.ys))
                    yield stitcher.finish_row(y)
            current.set_attribute("imagen.tiles", stats.tiles)
            current.set_attribute("imagen.requests", stats.requests)

    def mask(self, spec: ModelSpec, pixels: np.ndarray, stats: InferStats) -> np.ndarray:
        """A whole-image model's mask of the image: uint8 [size, size], small."""
        small = imaging.shrink(pixels, spec.size, spec.size)
        with tracing.span("triton.infer", attributes={"imagen.model": spec.name, "imagen.tiles": 1}):
            (mask,) = self._send(spec, small[None], stats)
        return np.asarray(mask)[:, :, 0]

    def _whole(self, spec: ModelSpec, pixels: np.ndarray, stats: InferStats) -> Iterator[np.ndarray]:
        """The image with the model's mask as its alpha, strip by strip (RGBA)."""
        yield from compose.cutout(pixels, self.mask(spec, pixels, stats), Options()).strips
