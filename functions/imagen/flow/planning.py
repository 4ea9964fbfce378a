"""A job's plan, known from the image header and its options before any pixel is decoded: the
result's size, the memory it needs and the seconds it will take. The worker runs by it; the
HTTP API checks it at upload, so a job that could never run is refused before it is stored."""

from __future__ import annotations

import dataclasses

from imagen.core import options
from imagen.core.config import Config
from imagen.core.models import ModelSpec
from imagen.image import budget, imaging, timeplan


@dataclasses.dataclass(frozen=True)
class Planned:
    """What a job will make and what it will cost, known from the header alone."""

    opts: options.Options
    memory: budget.Plan
    times: timeplan.TimePlan


def plan_job(
    cfg: Config, spec: ModelSpec, header: imaging.Header, size: int, opts: options.Options
) -> Planned:
    """The result's size and the memory it needs, then the seconds it will take (over the
    limit it fails now); at the largest scale whose encoding fits the time."""

    def memory(opts: options.Options) -> budget.Plan:
        limits = budget.OutputLimits(cfg.max_output_pixels)
        return budget.plan(
            spec, header, size, limits, cfg.job_budget_bytes, cfg.tile_batch, cfg.tile_concurrency, opts
        )

    plan = memory(opts)
    times = timeplan.plan(
        spec,
        header,
        (plan.width, plan.height, plan.scale),
        plan.format,
        cfg.tile_seconds,
        cfg.worker_concurrency,
        cfg.job_time_limit_s,
        scale_flexible=spec.scale > 1 and opts.scale is None,
    )
    if times.scale < plan.scale:
        opts = dataclasses.replace(opts, scale=times.scale)
        plan = memory(opts)
    return Planned(opts, plan, times)
