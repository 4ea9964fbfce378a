"""The services a handler uses, built once per process from Config and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagen.cloud.clients import Cloud
from imagen.cloud.jobqueries import JobQueries
from imagen.cloud.jobstore import JobStore
from imagen.cloud.objects import ObjectStore
from imagen.cloud.publisher import Publisher
from imagen.core.config import Config
from imagen.inference.breaker import Breaker
from imagen.inference.lazy import LazyRunner

if TYPE_CHECKING:
    from imagen.inference.runner import ModelRunner


@dataclass(frozen=True)
class Services:
    """Storage, the job store, the publisher and inference: what the handlers talk to."""

    storage: ObjectStore
    jobs: JobStore
    queries: JobQueries
    publisher: Publisher
    # Lazy from Config: only a function that runs a model (on_job) imports numpy and tritonclient.
    inference: ModelRunner | LazyRunner
    triton: Breaker  # this instance's view of whether Triton answers, shared by its jobs

    @classmethod
    def from_config(cls, cfg: Config) -> Services:
        """Real clients (emulators are picked up from *_EMULATOR_HOST); Triton's on first use."""
        runner = LazyRunner.triton(cfg.triton_url, cfg.triton_timeout_s, cfg.tile_batch, cfg.tile_concurrency)
        cloud = Cloud.connect(cfg.names, cfg.job_retention_days)
        return cls(
            storage=cloud.storage,
            jobs=cloud.jobs,
            queries=cloud.queries,
            publisher=cloud.publisher,
            inference=runner,
            triton=Breaker("triton", runner.ready, cfg.triton_probe_s),
        )
