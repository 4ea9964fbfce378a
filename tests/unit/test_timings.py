"""The local stack's timings are production's scaled down, every ratio to the lease kept."""

from __future__ import annotations

from pathlib import Path

from emulators.settings import LOCAL_FUNCTION_ENV, TIME_SCALE, StackSettings
from imagen.core.config import Config
from tests.terraform.hcl import TERRAFORM, load, one


def seconds(value: str) -> int:
    assert value.endswith("s"), value
    return int(value[:-1])


def test_local_timings_are_production_over_the_time_scale() -> None:
    production = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
    local = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p", **LOCAL_FUNCTION_ENV})
    for field in (
        "lease_s",
        "reconcile_lease_margin_s",
        "reconcile_publish_grace_s",
        "reconcile_queued_max_s",
        "triton_probe_s",
        "wait_horizon_s",
    ):
        assert getattr(production, field) == TIME_SCALE * getattr(local, field), field

    variables = load(TERRAFORM / "modules" / "messaging").named("variable")
    stack = StackSettings(project="p", bucket="b", port_base=1, state_dir=Path("."))
    assert seconds(one(variables["minimum_backoff"]["default"])) == TIME_SCALE * stack.retry_min_s
    assert seconds(one(variables["maximum_backoff"]["default"])) == TIME_SCALE * stack.retry_max_s
    assert one(variables["reconcile_schedule"]["default"]) == "* * * * *"  # every 60 s
    assert TIME_SCALE * stack.reconcile_every_s == 60
    assert one(variables["max_delivery_attempts"]["default"]) == production.max_attempts


def test_local_time_plans_keep_the_limit_to_timeout_ratio() -> None:
    """The time plan's figures follow the local accelerator (a CPU), not the 1/5 scale: the limit
    keeps production's ratio to the function timeout."""
    production = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
    local = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p", **LOCAL_FUNCTION_ENV})
    assert production.job_time_limit_s / production.function_timeout_s == (
        local.job_time_limit_s / local.function_timeout_s
    )
    for model, cpu in local.tile_seconds.items():
        assert cpu > production.tile_seconds[model], model  # the CPU is slower than the GPU
