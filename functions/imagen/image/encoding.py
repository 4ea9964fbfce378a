"""Result encoders that take row strips and write the file as they go, in bounded memory.

PNG is our own streaming writer (png.PngWriter). JPEG (and any result that must be resized
on the way out, such as an upscale by less than the model's factor) goes through libvips:
the strips are framed as an uncompressed PNG stream that vips reads sequentially from a pipe,
so vips holds some scanlines of its own, never the image. Its encoder runs on a thread of its
own; the caller's thread keeps running the model.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import zlib
from typing import Protocol

import numpy as np
import pyvips

from imagen.core.formats import DEFAULT_QUALITY
from imagen.core.limits import BLOCK_BYTES
from imagen.image import png

pyvips.cache_set_max(0)  # no operation cache: each job's pipeline is used once

JPEG_QUALITY = DEFAULT_QUALITY["JPEG"]


def blocks(strip: np.ndarray) -> list[np.ndarray]:
    """A strip cut into row blocks of about BLOCK_BYTES, so an encoder's copies stay small."""
    rows = max(1, BLOCK_BYTES // max(1, strip.shape[1] * strip.shape[2]))
    return [strip[i : i + rows] for i in range(0, len(strip), rows)]


class Sink(Protocol):
    """Where encoded bytes go: a file, a buffer, a result upload."""

    def write(self, data: bytes, /) -> int: ...


class Encoder(Protocol):
    def write(self, strip: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class PngEncoder:
    """Rows straight into the streaming PNG writer."""

    def __init__(self, sink: Sink, width: int, height: int, channels: int) -> None:
        self.png = png.PngWriter(sink, width, height, channels)

    def write(self, strip: np.ndarray) -> None:
        for block in blocks(strip):
            self.png.write(block)

    def close(self) -> None:
        self.png.close()

    def abort(self) -> None:
        pass


def _chunk(kind: bytes, body: bytes) -> bytes:
    return b"".join(png.chunk(kind, body))


class VipsEncoder:
    """Rows into libvips, which encodes (and resizes, when asked) and writes to the sink.

    The rows reach vips through an OS pipe that it reads in C on its own thread: no Python runs
    per read, and a full pipe (64 KiB) holds the writer back until vips has taken what it sent.
    """

    def __init__(
        self,
        sink: Sink,
        width: int,
        height: int,
        channels: int,
        suffix: str,
        out_size: tuple[int, int] | None = None,
    ) -> None:
        self.sink = sink
        self.width, self.height, self.channels = width, height, channels
        self.rows = 0
        self._deflate = zlib.compressobj(0)  # stored blocks: framing, not compression
        self._error: BaseException | None = None
        self._sink_error: BaseException | None = None
        self._aborted = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._thread = threading.Thread(
            target=self._run, args=(suffix, out_size), name="vips-encode", daemon=True
        )
        self._thread.start()
        self._put(png.head(width, height, channels))

    def _write(self, data: bytes) -> int:
        if self._aborted:
            return -1
        try:
            return self.sink.write(data)
        except BaseException as exc:  # e.g. the upload failed: vips stops, close() raises it
            self._sink_error = exc
            return -1

    def _run(self, suffix: str, out_size: tuple[int, int] | None) -> None:
        try:
            source = pyvips.Source.new_from_descriptor(self._read_fd)
            # a stream cut short (an abort) is an error, never a shorter image written out
            image = pyvips.Image.new_from_source(source, "", access="sequential", fail_on="truncated")
            if out_size is not None and out_size != (self.width, self.height):
                image = _resize(image, out_size[0] / self.width, out_size[1] / self.height)
            target = pyvips.TargetCustom()
            target.on_write(self._write)
            image.write_to_target(target, suffix)
        except BaseException as exc:  # the writer sees it at its next block
            self._error = exc
        finally:
            os.close(self._read_fd)  # a writer still sending now fails at once (EPIPE)

    def write(self, strip: np.ndarray) -> None:
        if strip.dtype != np.uint8 or strip.shape[1:] != (self.width, self.channels):
            raise ValueError(f"expected uint8 [n, {self.width}, {self.channels}], got {strip.shape}")
        for block in blocks(strip):
            rows = np.empty((len(block), self.width * self.channels + 1), np.uint8)
            rows[:, 0] = 0  # filter type None
            rows[:, 1:] = block.reshape(len(block), -1)
            self.rows += len(block)
            body = self._deflate.compress(rows.data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            del rows
            self._put(_chunk(b"IDAT", body))

    def _put(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._error is not None or not self._thread.is_alive():
                self._raise()
                raise RuntimeError("the encoder stopped before the image was complete")
            select.select([], [self._write_fd], [], 0.5)
            try:
                view = view[os.write(self._write_fd, view) :]
            except (BlockingIOError, BrokenPipeError):
                continue  # full: wait again; gone: the loop's check says why

    def _raise(self) -> None:
        if self._sink_error is not None:
            raise self._sink_error
        if isinstance(self._error, MemoryError):
            raise self._error
        if self._error is not None:
            raise RuntimeError(f"the encoder failed: {self._error}") from self._error

    def _end(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._write_fd)

    def close(self) -> None:
        if self.rows != self.height:
            raise ValueError(f"the encoder got {self.rows} rows of {self.height}")
        try:
            self._put(_chunk(b"IDAT", self._deflate.flush()) + _chunk(b"IEND", b""))
        finally:
            self._end()  # end of stream: vips may read past IEND and meets it
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Stop the encoder thread without finishing the file."""
        self._aborted = True
        self._end()  # vips meets a truncated stream and fails
        self._thread.join(timeout=10)


def _resize(image: pyvips.Image, hscale: float, vscale: float) -> pyvips.Image:
    """Lanczos3; with alpha, on premultiplied colour, so transparent pixels' colour never bleeds."""
    if image.bands != 4:
        return image.resize(hscale, vscale=vscale)
    return image.premultiply().resize(hscale, vscale=vscale).unpremultiply().cast("uchar")


def open_encoder(
    sink: Sink,
    fmt: str,
    width: int,
    height: int,
    channels: int,
    out_size: tuple[int, int] | None = None,
    quality: int = JPEG_QUALITY,
) -> Encoder:
    """An encoder for `fmt` (JPEG, PNG, WEBP, AVIF) of a width x height image fed as strips.

    `out_size` resizes on the way out (lanczos3), e.g. a x4 model output written at x2.5.
    JPEG and PNG stream; WebP and AVIF encoders hold the whole image (formats.Format says how much).
    """
    resize = out_size is not None and out_size != (width, height)
    if fmt == "PNG" and not resize:
        return PngEncoder(sink, width, height, channels)
    suffixes = {
        "PNG": ".png[compression=1]",
        "JPEG": f".jpg[Q={quality},subsample_mode=on]",
        "WEBP": f".webp[Q={quality}]",
        "AVIF": f".avif[Q={quality}]",
    }
    if fmt not in suffixes:
        raise ValueError(f"no encoder for {fmt}")
    if fmt == "JPEG" and channels in (2, 4):
        raise ValueError("JPEG holds no alpha")
    return VipsEncoder(sink, width, height, channels, suffixes[fmt], out_size)
