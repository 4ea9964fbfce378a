"""One place names things: topics, subscriptions, the jobs collection, prefixes, result objects.

The functions, the local stack, the CLI, the bench and the tests all derive every name from a
`Resources` built from config, so a prefix changed in one place changes everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from imagen.core.formats import FORMATS
from imagen.core.models import MODELS

MAX_OBJECT_NAME_BYTES = 1024  # GCS's limit on an object name


@dataclass(frozen=True)
class Resources:
    """Every name the system uses, derived from a project and a few prefixes."""

    project: str
    topic_prefix: str = "imagen-"
    jobs_collection: str = "jobs"
    result_prefix: str = "results/"
    events_topic_name: str = ""  # "" → <topic_prefix>events

    @classmethod
    def from_env(cls, env: Mapping[str, str], project: str) -> Resources:
        """The naming keys of the functions' environment (TOPIC_PREFIX, JOBS_COLLECTION, …)."""
        return cls(
            project=project,
            topic_prefix=env.get("TOPIC_PREFIX", cls.topic_prefix),
            jobs_collection=env.get("JOBS_COLLECTION", cls.jobs_collection),
            result_prefix=env.get("RESULT_PREFIX", cls.result_prefix),
            events_topic_name=env.get("EVENTS_TOPIC", ""),
        )

    # Topics and subscriptions ---------------------------------------------------------------
    def job_topic(self, model: str) -> str:
        return f"{self.topic_prefix}{model}"

    def job_subscription(self, model: str) -> str:
        return f"{self.topic_prefix}{model}-worker"

    @property
    def events_topic(self) -> str:
        return self.events_topic_name or f"{self.topic_prefix}events"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}dead-letter"

    @property
    def dead_letter_subscription(self) -> str:
        return f"{self.dead_letter_topic}-handler"

    @property
    def reconcile_topic(self) -> str:
        """Cloud Scheduler's ticks for the reconciler."""
        return f"{self.topic_prefix}reconcile"

    @property
    def reconcile_subscription(self) -> str:
        return f"{self.reconcile_topic}-handler"

    @property
    def notification_topic(self) -> str:
        """Where storage notifications go (the local stack's stand-in for Eventarc)."""
        return f"{self.topic_prefix}gcs-notifications"

    @property
    def notification_subscription(self) -> str:
        return f"{self.notification_topic}-bridge"

    def topics(self) -> list[str]:
        """Every topic the system publishes to."""
        return [
            self.notification_topic,
            self.dead_letter_topic,
            self.events_topic,
            self.reconcile_topic,
            *(self.job_topic(m) for m in MODELS),
        ]

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"

    # Objects -------------------------------------------------------------------------------
    def result_name(self, model: str, source_name: str, ext: str = "") -> str:
        """results/<model>/<path under the model prefix>.<result extension>, one per source.

        The source's own name is kept whole, extension included, and the result's extension is
        appended (`IMG_0001.HEIC` → `IMG_0001.HEIC.jpg`, `IMG_0001.JPG` → `IMG_0001.JPG.jpg`), so
        two sources never share a result. '', '.' and '..' segments become '_' so no consumer
        that maps names to paths can escape its folder; such a name, and one over GCS's 1024-byte
        limit, also carries a hash of the source name, which keeps it apart from the source
        that really is named with '_'.
        """
        rest = source_name.split("/", 1)[1]
        raw = rest.split("/")
        segments = ["_" if seg in ("", ".", "..") else seg for seg in raw]
        ext = ext or FORMATS[MODELS[model].result_format].extension
        folder = f"{self.result_prefix}{model}/"
        digest = hashlib.sha256(source_name.encode()).hexdigest()[:16]
        path = "/".join(segments)
        if segments != raw:
            path = f"{path}-{digest}"
        name = f"{folder}{path}{ext}"
        if len(name.encode()) > MAX_OBJECT_NAME_BYTES:
            room = MAX_OBJECT_NAME_BYTES - len(f"{folder}-{digest}{ext}".encode())
            short = "/".join(segments).encode()[:room].decode(errors="ignore")
            name = f"{folder}{short}-{digest}{ext}"
        return name


def gs_uri(bucket: str, name: str) -> str:
    return f"gs://{bucket}/{name}"


def split_gs_uri(uri: str) -> tuple[str, str]:
    """(bucket, object name) of a gs:// URI."""
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        raise ValueError(f"not a gs:// object URI: {uri!r}")
    bucket, _, name = uri[5:].partition("/")
    return bucket, name


def object_name(uri: str) -> str:
    """The object name inside a gs:// URI (a job's result_uri, say)."""
    return split_gs_uri(uri)[1]
