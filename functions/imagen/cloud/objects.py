"""Cloud Storage I/O of a job: its source read within the input limit, its result written once."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]

from imagen.core import logs, metadata, usage
from imagen.core.errors import BadInput, ServiceDown, Transient
from imagen.core.names import gs_uri, split_gs_uri
from imagen.jobs.messages import RESULT_MARKER, JobMessage, Upload


@dataclass(frozen=True)
class Written:
    uri: str
    wrote: bool  # False: an earlier attempt of this job had written it already
    generation: int = 0
    size: int = 0
    metadata: dict[str, str] = field(default_factory=dict)  # a reused result's, as that attempt wrote it


@dataclass(frozen=True)
class Source:
    """A source generation's bytes (inflated) and its custom metadata."""

    data: bytes
    metadata: dict[str, str]


@dataclass(frozen=True)
class ResultHeaders:
    """What a result object carries besides its bytes."""

    content_type: str
    cache_control: str = ""
    metadata: dict[str, str] = field(default_factory=dict)  # the source's own, and the options used
    run: int = 0  # the job's run (backfill --all): an older run's result is written over


@dataclass(frozen=True)
class Listed:
    """An object a prefix scan found: the upload it is, and when it was created."""

    upload: Upload
    created: dt.datetime | None


def refusal(exc: BaseException) -> tuple[int, str] | None:
    """A Google API's refusal (storage's, Firestore's) as an HTTP status and its message: a 4xx
    as it came, anything else as 502. None when `exc` is not a Google API call's error."""
    if not isinstance(exc, gexc.GoogleAPICallError):
        return None
    status = exc.code if isinstance(exc.code, int) and 400 <= exc.code < 500 else 502
    return status, str(exc.message)


# Compressed bytes fed to the inflater at a time. What follows a member's end is copied into
# its unused_data, so a step this size keeps many tiny members cheap (64 KiB: 2.2x slower).
_INFLATE_IN = 16 * 1024
_INFLATE_OUT = 1024 * 1024  # the most it may give back per step


def _padding_start(raw: bytes) -> int:
    """Where the trailing NULs start: one pass back from the end, 64 KiB at a time (no copy of `raw`)."""
    end = len(raw)
    while end:
        start = max(0, end - 65536)
        kept = len(raw[start:end].rstrip(b"\x00"))
        if kept:
            return start + kept
        end = start
    return 0


def inflate(raw: bytes, max_bytes: int) -> bytes:
    """A gzip stream's content (every member, trailing NUL padding allowed), inflated a step at
    a time; BadInput as soon as it passes `max_bytes`, or when it is corrupt or cut short."""
    out = io.BytesIO()
    view = memoryview(raw)
    end = _padding_start(raw)  # NUL padding after the last member, as gzip itself allows
    pos = total = 0
    try:
        while pos < end:  # a member starts here (its own trailer may end in NULs: read past `end`)
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending: bytes | memoryview = b""
            while not inflater.eof:
                if not pending:
                    if pos >= len(view):
                        raise BadInput("the gzip-encoded file is truncated")
                    pending = view[pos : pos + _INFLATE_IN]
                    pos += len(pending)
                piece = inflater.decompress(pending, _INFLATE_OUT)
                total += len(piece)
                if total > max_bytes:
                    raise BadInput(f"the gzip-encoded file inflates to over the limit of {max_bytes} bytes")
                out.write(piece)
                pending = inflater.unconsumed_tail
            pos -= len(inflater.unused_data)  # the next member starts there
    except zlib.error as exc:
        raise BadInput(f"the gzip-encoded file is corrupt ({exc})") from exc
    return out.getvalue()


# Storage's own faults (5xx, throttling, timeouts, no connection): the job waits for storage.
_SERVICE_FAULTS: tuple[type[BaseException], ...] = (
    gexc.ServerError,
    gexc.TooManyRequests,
    gexc.RetryError,
    ConnectionError,
    TimeoutError,
)
try:  # the transport under google-cloud-storage
    import requests

    _SERVICE_FAULTS += (requests.ConnectionError, requests.Timeout)
except ImportError:  # pragma: no cover
    pass


@contextlib.contextmanager
def storage_faults(what: str) -> Iterator[None]:
    """Raise storage's own faults as ServiceDown("storage"); anything else as it came."""
    try:
        yield
    except _SERVICE_FAULTS as exc:
        raise ServiceDown(
            "storage", f"storage unreachable while {what}: {type(exc).__name__}: {exc}"
        ) from exc


def _precondition_failed(exc: Exception) -> bool:
    """A 412 from a streamed upload (the resumable path reports it as InvalidResponse)."""
    response = getattr(exc, "response", None)
    return isinstance(exc, gexc.PreconditionFailed) or getattr(response, "status_code", None) == 412


class ResultUpload:
    """A result written as it is encoded: held until it passes one chunk, then streamed.

    Nothing exists at the result name until `commit`; `abort` (or an error) leaves nothing.
    """

    def __init__(self, job_id: str, blob: storage.Blob, uri: str, precondition: int, chunk: int) -> None:
        self.job_id, self.blob, self.uri = job_id, blob, uri
        self.content_type, self.precondition, self.chunk = blob.content_type, precondition, chunk
        self.bytes = 0
        self._head = bytearray()
        self._stream: Any = None
        self._aborted = False

    def annotate(self, key: str, value: str) -> None:
        """Add a metadata key before the first byte goes out (e.g. the model version)."""
        self.blob.metadata = {**(self.blob.metadata or {}), key: value}

    def write(self, data: bytes, /) -> int:
        if self._aborted:
            raise RuntimeError(f"{self.uri}: the upload was aborted")
        self.bytes += len(data)
        with storage_faults("writing the result"):
            if self._stream is not None:
                self._stream.write(data)
                return len(data)
            self._head += data
            if len(self._head) > self.chunk:
                usage.count(usage.STORAGE_CLASS_A)  # the resumable session
                self._stream = self.blob.open(
                    "wb",
                    content_type=self.content_type,
                    if_generation_match=self.precondition,
                    chunk_size=self.chunk,
                )
                self._stream.write(bytes(self._head))
                self._head = bytearray()
        return len(data)

    def commit(self) -> Written:
        """Complete the upload: the result exists from now on (and not before)."""
        try:
            with storage_faults("writing the result"):
                if self._stream is None:
                    usage.count(usage.STORAGE_CLASS_A)
                    self.blob.upload_from_string(
                        bytes(self._head),
                        content_type=self.content_type,
                        if_generation_match=self.precondition,
                    )
                else:
                    self._stream.close()
                    usage.count(usage.STORAGE_CLASS_A, -(-self.bytes // self.chunk))  # one request a chunk
                    usage.count(usage.STORAGE_CLASS_B)
                    self.blob.reload()  # the generation written (the session's response is not kept)
        except Exception as exc:
            if _precondition_failed(exc):
                raise Transient(f"{self.uri} changed while this job wrote it; retrying") from exc
            raise
        if (self.blob.metadata or {}).get(RESULT_MARKER) != self.job_id:
            raise Transient(f"{self.uri} changed right after this job wrote it; retrying")
        generation = int(self.blob.generation or 0)
        logs.result_written(self.job_id, self.uri, generation, self.bytes)
        return Written(self.uri, True, generation)

    def abort(self) -> None:
        """Drop what was written so far: the result name stays as it was."""
        self._aborted = True
        self._head = bytearray()
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.terminate()
            self._stream = None


def _listed(blob: storage.Blob) -> Listed:
    """A listed object as the upload its storage event would describe."""
    upload = Upload(
        bucket=blob.bucket.name,
        name=blob.name,
        generation=str(blob.generation),
        size=int(blob.size or 0),
        content_type=blob.content_type or "",
        metadata={str(k): str(v) for k, v in (blob.metadata or {}).items()},
    )
    return Listed(upload, blob.time_created)


class ObjectStore:
    """Reads sources and writes results in the job's bucket."""

    def __init__(self, client: storage.Client) -> None:
        self.client = client

    def download(self, msg: JobMessage, max_bytes: int) -> Source:
        """The source generation's bytes, never more than `max_bytes` of them.

        BadInput when it is gone or over the limit: by its stored size before any byte is read,
        and for a gzip-encoded upload while it inflates (a counting inflater stops at the limit).
        """
        blob = self.client.bucket(msg.bucket).blob(msg.name, generation=int(msg.generation))
        try:
            with storage_faults("reading the upload"):
                usage.count(usage.STORAGE_CLASS_B)
                blob.reload()
        except gexc.NotFound as exc:
            raise BadInput(f"{gs_uri(msg.bucket, msg.name)}#{msg.generation} no longer exists") from exc
        if blob.size is not None and blob.size > max_bytes:
            raise BadInput(f"the file is {blob.size} bytes, over the limit of {max_bytes} bytes")
        try:
            with storage_faults("reading the upload"):
                usage.count(usage.STORAGE_CLASS_B)
                raw: bytes = blob.download_as_bytes(raw_download=True)  # checksummed, size checked above
        except gexc.NotFound as exc:
            raise BadInput(f"{gs_uri(msg.bucket, msg.name)}#{msg.generation} no longer exists") from exc
        if len(raw) > max_bytes:  # a size the metadata did not tell
            raise BadInput(f"the file is over the limit of {max_bytes} bytes")
        if (blob.content_encoding or "").lower() == "gzip":
            raw = inflate(raw, max_bytes)
        return Source(raw, dict(blob.metadata or {}))

    def begin_result(
        self, msg: JobMessage, name: str, headers: ResultHeaders, chunk_bytes: int, version: str = ""
    ) -> Written | ResultUpload:
        """Where this job's result goes: Written when an earlier attempt of this run wrote it.

        A result from a newer generation of the same source is never overwritten by an older
        one, and an object there for another source (or not written by imagen) never at all.
        """
        bucket = self.client.bucket(msg.bucket)
        uri = gs_uri(msg.bucket, name)
        source = gs_uri(msg.bucket, msg.name)
        with storage_faults("looking for an earlier result"):
            usage.count(usage.STORAGE_CLASS_B)
            existing = bucket.get_blob(name)
        precondition = 0
        if existing is not None:
            meta = existing.metadata or {}
            same_run = meta.get(metadata.RUN, "0") == str(headers.run)
            if meta.get(RESULT_MARKER) == msg.job_id and same_run:
                return Written(uri, False, int(existing.generation or 0), int(existing.size or 0), dict(meta))
            if meta.get(metadata.SOURCE) != source:  # never another source's result, or a stranger's
                owner = meta.get(metadata.SOURCE) or "an object imagen did not write"
                raise BadInput(f"{uri} already holds {owner}; it is never overwritten by another source")
            if int(meta.get(metadata.SOURCE_GENERATION, "0")) > int(msg.generation):
                raise BadInput(f"superseded: {uri} already holds the result of a newer upload of this object")
            precondition = int(existing.generation)
        blob = bucket.blob(name, chunk_size=chunk_bytes)
        blob.content_type = headers.content_type
        blob.cache_control = headers.cache_control or None
        blob.metadata = {
            **headers.metadata,  # the source's own keys first (as the Firebase extension copies them)
            RESULT_MARKER: msg.job_id,
            metadata.RUN: str(headers.run),
            metadata.SOURCE: source,
            metadata.SOURCE_GENERATION: msg.generation,
            metadata.MODEL: msg.model,
            metadata.MODEL_VERSION: version,
        }
        return ResultUpload(msg.job_id, blob, uri, precondition, chunk_bytes)

    def has_result(self, upload: Upload, names: list[str]) -> bool:
        """Whether one of `names` holds the result of this generation of the upload."""
        for name in names:
            usage.count(usage.STORAGE_CLASS_B)
            blob = self.client.bucket(upload.bucket).get_blob(name)
            meta = (blob.metadata or {}) if blob is not None else {}
            if meta.get(metadata.SOURCE_GENERATION) == str(upload.generation):
                return True
        return False

    def uploads(
        self, bucket: str, prefix: str, start_offset: str | None = None, max_results: int | None = None
    ) -> Iterator[Listed]:
        """The objects under `prefix`, in name order (from `start_offset`, at most `max_results`),
        each as the upload its storage event would describe."""
        blobs = self.client.list_blobs(
            bucket, prefix=prefix, start_offset=start_offset or None, max_results=max_results
        )
        for page in blobs.pages:
            usage.count(usage.STORAGE_CLASS_A)  # one list request a page
            yield from (_listed(blob) for blob in page)

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str],
        if_generation_match: int | None = 0,
    ) -> int:
        """Write an object at once; its generation. By default only where there is none yet."""
        blob = self.client.bucket(bucket).blob(name)
        blob.metadata = dict(metadata) or None
        usage.count(usage.STORAGE_CLASS_A)
        blob.upload_from_string(data, content_type=content_type, if_generation_match=if_generation_match)
        return int(blob.generation or 0)

    def generation(self, bucket: str, name: str) -> int | None:
        """The object's current generation; None when there is no such object."""
        usage.count(usage.STORAGE_CLASS_B)
        blob = self.client.bucket(bucket).get_blob(name)
        return None if blob is None else int(blob.generation or 0)

    def sign_put(
        self,
        bucket: str,
        name: str,
        signer: Callable[..., str],
        expiration: dt.timedelta,
        content_type: str,
        headers: Mapping[str, str],
    ) -> str:
        """A V4 signed URL to PUT the object with these headers (cloud/signing.py's signer)."""
        usage.count(usage.SIGN)
        return signer(
            self.client.bucket(bucket).blob(name),
            version="v4",
            expiration=expiration,
            method="PUT",
            content_type=content_type,
            headers=dict(headers),
        )

    def sign_get(self, uri: str, signer: Callable[..., str], expiration: dt.timedelta, filename: str) -> str:
        """A V4 signed URL to GET one object (a job's result), saved under `filename`."""
        bucket, name = split_gs_uri(uri)
        usage.count(usage.SIGN)
        return signer(
            self.client.bucket(bucket).blob(name),
            version="v4",
            expiration=expiration,
            method="GET",
            response_disposition=f'attachment; filename="{filename}"',
        )

    def remove(self, written: Written) -> None:
        """Delete a result this attempt wrote (only that generation: never a later one)."""
        bucket, name = split_gs_uri(written.uri)
        with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
            self.client.bucket(bucket).blob(name).delete(if_generation_match=written.generation)
