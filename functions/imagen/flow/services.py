"""The services a handler uses, built once per process from Config and passed in."""

from __future__ import annotations

from dataclasses import dataclass

from imagen.cloud.clients import Cloud
from imagen.cloud.jobqueries import JobQueries
from imagen.cloud.jobstore import JobStore
from imagen.cloud.objects import ObjectStore
from imagen.cloud.publisher import Publisher
from imagen.core.config import Config
from imagen.inference.breaker import Breaker
from imagen.inference.runner import ModelRunner


@dataclass(frozen=True)
class Services:
    """Storage, the job store, the publisher and inference: what the handlers talk to."""

    storage: ObjectStore
    jobs: JobStore
    queries: JobQueries
    publisher: Publisher
    inference: ModelRunner
    triton: Breaker  # this instance's view of whether Triton answers, shared by its jobs

    @classmethod
    def from_config(cls, cfg: Config) -> Services:
        """Real clients (emulators are picked up from *_EMULATOR_HOST)."""
        runner = ModelRunner.triton(
            cfg.triton_url, cfg.triton_timeout_s, cfg.tile_batch, cfg.tile_concurrency
        )
        cloud = Cloud.connect(cfg.names)
        return cls(
            storage=cloud.storage,
            jobs=cloud.jobs,
            queries=cloud.queries,
            publisher=cloud.publisher,
            inference=runner,
            triton=Breaker("triton", runner.ready, cfg.triton_probe_s),
        )
