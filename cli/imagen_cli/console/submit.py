"""Submit from the page: a file's bytes streamed to a temporary file, then uploaded under the
model prefix with its options as metadata, as `imagen submit` uploads it (its job id follows
from the generation written)."""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagen.jobs.messages import job_id

MAX_UPLOAD_BYTES = 512 << 20  # what the console takes in one file (the pipeline's own limit is lower)


class SubmitError(Exception):
    """The upload cannot be made as asked; says why."""


@dataclass(frozen=True)
class Submitted:
    job_id: str
    object: str
    size: int


def object_name(model: str, filename: str, folder: str = "") -> str:
    """MODEL/[FOLDER/]FILE: the file's own name (no path), control characters refused."""
    base = re.split(r"[\\/]", filename)[-1].strip()
    if not base or base in (".", ".."):
        raise SubmitError("the file has no name")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in base + folder):
        raise SubmitError("a name with control characters is refused")
    parts = [p for p in folder.strip("/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise SubmitError("a folder of '.' or '..' is refused")
    return "/".join([model, *parts, base])


async def spool(chunks: AsyncIterator[bytes], folder: Path) -> tuple[Path, int]:
    """The request body in a temporary file (never in memory); SubmitError past MAX_UPLOAD_BYTES."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix="upload-")
    path, size = Path(name), 0
    try:
        with open(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise SubmitError(f"the file is over {MAX_UPLOAD_BYTES >> 20} MiB")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


def upload(bucket: Any, name: str, path: Path, metadata: Mapping[str, str], content_type: str) -> Submitted:
    """Write the object (options as its metadata) and name the job its generation starts."""
    blob = bucket.blob(name)
    blob.metadata = dict(metadata) or None
    blob.upload_from_filename(str(path), content_type=content_type or None)
    return Submitted(job_id(bucket.name, name, str(blob.generation)), name, int(blob.size or 0))
