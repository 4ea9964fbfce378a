"""Google Cloud clients, created once per process (emulators are picked up from *_EMULATOR_HOST)."""

from __future__ import annotations

from functools import lru_cache

from google.cloud import firestore, pubsub_v1, storage  # type: ignore[attr-defined]

from . import config
from .inference import TritonRunner
from .jobs import JobStore


@lru_cache(maxsize=1)
def gcs() -> storage.Client:
    return storage.Client(project=config.get().project)


@lru_cache(maxsize=1)
def jobs() -> JobStore:
    cfg = config.get()
    return JobStore(firestore.Client(project=cfg.project), cfg.jobs_collection)


@lru_cache(maxsize=1)
def publisher() -> pubsub_v1.PublisherClient:
    """Each message is sent at once: a function publishes one and waits for it, so the default
    batching would only add its 10 ms wait to every job."""
    return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))


@lru_cache(maxsize=1)
def triton() -> TritonRunner:
    cfg = config.get()
    return TritonRunner(cfg.triton_url, cfg.triton_timeout_s, cfg.tile_batch, cfg.tile_concurrency)
