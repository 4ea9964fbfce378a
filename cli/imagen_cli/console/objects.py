"""Bucket objects as files on this machine's disk, for previews and crops: streamed to a file
(never held in memory), kept a while (least recently used first out, within a byte budget)."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc

MAX_OBJECT_BYTES = 1 << 30  # a larger object is not fetched for a preview (download it instead)
CACHE_BYTES = 2 << 30  # the files kept on disk at most
DOWNLOAD_CHUNK = 1 << 20


class MissingObject(Exception):
    """The object is not there (any more)."""


class TooLarge(Exception):
    """The object is over MAX_OBJECT_BYTES: no preview, only its download."""


@dataclass(frozen=True)
class Local:
    """One object generation, on disk."""

    path: Path
    name: str
    generation: int
    size: int
    content_type: str
    metadata: dict[str, str]


class Objects:
    """The bucket's objects, fetched to `folder` on demand."""

    def __init__(self, client: Any, folder: Path, cache_bytes: int = CACHE_BYTES) -> None:
        self.client = client
        self.folder = folder
        self.cache_bytes = cache_bytes
        self._kept: OrderedDict[Path, int] = OrderedDict()
        self._lock = threading.Lock()
        self._fetching: dict[Path, threading.Lock] = {}

    def blob(self, bucket: str, name: str) -> Any:
        """The object's current generation (its metadata loaded); MissingObject when absent."""
        blob = self.client.bucket(bucket).get_blob(name)
        if blob is None:
            raise MissingObject(f"gs://{bucket}/{name} does not exist")
        return blob

    def local(self, bucket: str, name: str) -> Local:
        """The object's current generation as a file (fetched once, then kept a while)."""
        blob = self.blob(bucket, name)
        size = int(blob.size or 0)
        if size > MAX_OBJECT_BYTES:
            raise TooLarge(f"{size} bytes: over the {MAX_OBJECT_BYTES >> 20} MiB the console previews")
        key = hashlib.sha256(f"{bucket}/{name}#{blob.generation}".encode()).hexdigest()[:32]
        path = self.folder / key
        with self._lock:
            fetching = self._fetching.setdefault(path, threading.Lock())
        with fetching:  # one download of a file, however many requests want it
            if not path.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".part")
                try:
                    blob.download_to_filename(str(partial), if_generation_match=blob.generation)
                except gexc.NotFound as exc:
                    partial.unlink(missing_ok=True)
                    raise MissingObject(f"gs://{bucket}/{name} is gone") from exc
                partial.rename(path)
        self._keep(path, size)
        return Local(
            path, name, int(blob.generation or 0), size, blob.content_type or "", dict(blob.metadata or {})
        )

    def _keep(self, path: Path, size: int) -> None:
        with self._lock:
            self._kept[path] = size
            self._kept.move_to_end(path)
            while sum(self._kept.values()) > self.cache_bytes and len(self._kept) > 1:
                old, _ = self._kept.popitem(last=False)
                old.unlink(missing_ok=True)

    def chunks(self, bucket: str, name: str) -> tuple[Any, Iterator[bytes]]:
        """The object and its bytes, a chunk at a time (the whole-file download)."""
        blob = self.blob(bucket, name)

        def read() -> Iterator[bytes]:
            with blob.open("rb", chunk_size=DOWNLOAD_CHUNK) as stream:
                while chunk := stream.read(DOWNLOAD_CHUNK):
                    yield chunk

        return blob, read()

    def close(self) -> None:
        with self._lock:
            for path in self._kept:
                with contextlib.suppress(OSError):
                    path.unlink()
            self._kept.clear()
