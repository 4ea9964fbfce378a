"""Parsing the two events the functions receive and deciding which uploads become jobs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from imagen.core import metadata
from imagen.core.models import MODELS

STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
RESULT_MARKER = metadata.RESULT  # on every object the pipeline writes


class EventError(ValueError):
    """The event is not one the function can use."""


@dataclass(frozen=True)
class Upload:
    """A finalized object, as the storage event describes it."""

    bucket: str
    name: str
    generation: str
    size: int
    content_type: str
    metadata: dict[str, str]

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def parse_upload(event_type: str, data: Any) -> Upload:
    if event_type != STORAGE_FINALIZED:
        raise EventError(f"unexpected event type {event_type!r}")
    if isinstance(data, (bytes, str)):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise EventError("storage event data is not an object")
    try:
        return Upload(
            bucket=str(data["bucket"]),
            name=str(data["name"]),
            generation=str(data["generation"]),
            size=int(data.get("size") or 0),
            content_type=str(data.get("contentType") or ""),
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventError(f"storage event lacks {exc}") from exc


def route(upload: Upload, result_prefix: str) -> tuple[str | None, str]:
    """The model this upload is for, or None with the reason it starts no job."""
    name = upload.name
    if name.startswith(result_prefix):
        return None, f"under {result_prefix}"
    if RESULT_MARKER in upload.metadata:
        return None, "carries the result marker"
    if name.endswith("/"):
        return None, "folder placeholder"
    prefix, sep, rest = name.partition("/")
    if not sep or prefix not in MODELS:
        return None, "not under a model prefix"
    if not rest:
        return None, "no file name under the prefix"
    return prefix, "ok"


def job_id(bucket: str, name: str, generation: str) -> str:
    """One id per object generation, so a duplicate event finds the same job."""
    return hashlib.sha256(f"{bucket}\0{name}\0{generation}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class JobMessage:
    """What on_upload publishes to the model's topic."""

    job_id: str
    model: str
    bucket: str
    name: str
    generation: str

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


def parse_job_message(event_type: str, data: Any) -> tuple[JobMessage, int]:
    """The job message inside a Pub/Sub CloudEvent, and the delivery attempt (1 if unknown)."""
    if event_type != PUBSUB_PUBLISHED:
        raise EventError(f"unexpected event type {event_type!r}")
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise EventError("Pub/Sub event has no message")
    try:
        payload = json.loads(base64.b64decode(data["message"].get("data") or b"", validate=True))
        msg = JobMessage(**{k: str(payload[k]) for k in ("job_id", "model", "bucket", "name", "generation")})
    except (binascii.Error, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise EventError(f"job message is malformed: {exc!r}") from exc
    if msg.model not in MODELS:
        raise EventError(f"job message names unknown model {msg.model!r}")
    attempt = int(data.get("deliveryAttempt") or data["message"].get("deliveryAttempt") or 1)
    return msg, attempt
