"""Connecting to Google Cloud once per process: storage, the jobs collection and Pub/Sub."""

from __future__ import annotations

from dataclasses import dataclass

from google.cloud import firestore, storage  # type: ignore[attr-defined]

from imagen.cloud.jobqueries import JobQueries
from imagen.cloud.jobstore import JobStore
from imagen.cloud.objects import ObjectStore
from imagen.cloud.publisher import Publisher, make_client
from imagen.core.config import Config
from imagen.core.names import Resources


@dataclass(frozen=True)
class Cloud:
    """The clients imagen's code talks through (emulators are picked up from *_EMULATOR_HOST)."""

    storage: ObjectStore
    jobs: JobStore
    queries: JobQueries
    publisher: Publisher

    @classmethod
    def connect(cls, names: Resources, retention_days: int = Config.job_retention_days) -> Cloud:
        """The clients; an ended job's document is kept `retention_days` (Config.job_retention_days)."""
        db = firestore.Client(project=names.project)
        return cls(
            storage=ObjectStore(storage.Client(project=names.project)),
            jobs=JobStore(db, names.jobs_collection, retention_days),
            queries=JobQueries(db, names.jobs_collection),
            publisher=Publisher(make_client(), names),
        )
