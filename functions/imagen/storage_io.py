"""Cloud Storage I/O of a job: its source read within the input limit, its result written once."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]

from . import logs
from .errors import BadInput, Transient
from .events import RESULT_MARKER, JobMessage
from .names import gs_uri, split_gs_uri


@dataclass(frozen=True)
class Written:
    uri: str
    wrote: bool  # False: an earlier attempt of this job had written it already
    generation: int = 0


class ObjectStore:
    """Reads sources and writes results in the job's bucket."""

    def __init__(self, client: storage.Client) -> None:
        self.client = client

    def download(self, msg: JobMessage, max_bytes: int) -> bytes:
        """The source generation's bytes; BadInput when it is gone or over `max_bytes`."""
        blob = self.client.bucket(msg.bucket).blob(msg.name, generation=int(msg.generation))
        try:
            blob.reload()
        except gexc.NotFound as exc:
            raise BadInput(f"{gs_uri(msg.bucket, msg.name)}#{msg.generation} no longer exists") from exc
        if blob.size is not None and blob.size > max_bytes:
            raise BadInput(f"the file is {blob.size} bytes, over the limit of {max_bytes} bytes")
        data: bytes = blob.download_as_bytes()
        return data

    def write_result(
        self, msg: JobMessage, name: str, data: bytes, content_type: str, version: str
    ) -> Written:
        """Write the result once.

        A result already written for this job (an earlier attempt died before marking the job
        done) is reused, not written again. A result from a newer generation of the same source
        is never overwritten by an older one, and an object there for another source (or not
        written by imagen) is never overwritten at all.
        """
        bucket = self.client.bucket(msg.bucket)
        uri = gs_uri(msg.bucket, name)
        source = gs_uri(msg.bucket, msg.name)
        existing = bucket.get_blob(name)
        precondition = 0
        if existing is not None:
            meta = existing.metadata or {}
            if meta.get(RESULT_MARKER) == msg.job_id:
                return Written(uri, False)
            if meta.get("imagen-source") != source:  # never another source's result, or a stranger's
                owner = meta.get("imagen-source") or "an object imagen did not write"
                raise BadInput(f"{uri} already holds {owner}; it is never overwritten by another source")
            if int(meta.get("imagen-source-generation", "0")) > int(msg.generation):
                raise BadInput(f"superseded: {uri} already holds the result of a newer upload of this object")
            precondition = int(existing.generation)
        blob = bucket.blob(name)
        blob.metadata = {
            RESULT_MARKER: msg.job_id,
            "imagen-source": source,
            "imagen-source-generation": msg.generation,
            "imagen-model": msg.model,
            "imagen-model-version": version,
        }
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=precondition)
        except gexc.PreconditionFailed as exc:
            raise Transient(f"{uri} changed while this job wrote it; retrying") from exc
        logs.result_written(msg.job_id, uri, int(blob.generation or 0), len(data))
        return Written(uri, True, int(blob.generation or 0))

    def remove(self, written: Written) -> None:
        """Delete a result this attempt wrote (only that generation: never a later one)."""
        bucket, name = split_gs_uri(written.uri)
        with contextlib.suppress(gexc.NotFound, gexc.PreconditionFailed):
            self.client.bucket(bucket).blob(name).delete(if_generation_match=written.generation)
