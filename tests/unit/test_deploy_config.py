"""Terraform and the code that reads its values agree: the worker's memory, its time plans and
waits, the log events the alerts count. (Here, not in tests/terraform: these import the core,
which `nox -s tf` does not install.)"""

from __future__ import annotations

import re

from imagen.core import logs
from imagen.core.config import Config
from imagen.core.models import TRITON_MODELS, VARIANTS
from tests.terraform.hcl import TERRAFORM, load, one


def test_each_worker_knows_its_memory_and_concurrency_and_config_defaults_match() -> None:
    """The per-job memory budget is derived from what Terraform gives each on_job instance."""
    functions = load(TERRAFORM / "modules" / "functions")
    fn = functions.resource("google_cloudfunctions2_function", "on_job")
    env = one(one(fn["service_config"])["environment_variables"])
    assert "local.worker_env" in env and "local.common_env" in env
    worker_env = functions.env(functions.locals()["worker_env"])
    assert worker_env["WORKER_MEMORY_MB"] == "${tostring(local.worker_memory_mb)}"
    assert worker_env["WORKER_CONCURRENCY"] == "${tostring(var.worker_concurrency)}"
    assert worker_env["UPSCALE_DEFAULT"] == "${var.upscale_default}"
    variable = functions.named("variable")["upscale_default"]

    assert one(variable["default"]) == Config.upscale_default  # the same default as the code
    assert set(VARIANTS["upscale"]) <= set(one(one(variable["validation"])["condition"]).split('"'))
    from emulators.stack import WORKER_MALLOC_ENV

    assert {k: worker_env[k] for k in WORKER_MALLOC_ENV} == WORKER_MALLOC_ENV  # as the local stack
    assert "MAX_OUTPUT_PIXELS" in functions.locals()["common_env"]
    variables = functions.named("variable")
    assert one(variables["worker_memory"]["default"]) == "2Gi"
    defaults = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
    assert defaults.worker_memory_mb == 2 * 1024
    assert defaults.worker_concurrency == one(variables["worker_concurrency"]["default"])
    assert defaults.max_output_pixels == one(variables["max_output_pixels"]["default"])


def test_alerts_notify_the_channel_document_what_to_do_and_count_real_log_events() -> None:
    monitoring = load(TERRAFORM / "modules" / "monitoring")
    policy = monitoring.resource("google_monitoring_alert_policy", "alerts")
    assert one(policy["notification_channels"]) == "${local.channels}"
    assert "google_monitoring_notification_channel.email" in one(monitoring.locals()["channels"])
    assert one(one(policy["documentation"])["content"]) == "${each.value[3]}"
    alerts = monitoring.locals()["alerts"]
    assert set(alerts) == {
        "dead_letters",
        "failure_rate",
        "oldest_unacked",
        "function_errors",
        "memory_kills",
        "triton_queue",
        "gpu_busy",
        "triton_down",
    }
    variables = monitoring.named("variable")
    for key, (title, query, hold_s, todo) in alerts.items():
        if isinstance(hold_s, str):  # a variable's default
            hold_s = one(variables[hold_s.removeprefix("${var.").removesuffix("}")]["default"])
        assert title.startswith("imagen: ") and query and int(hold_s) > 0 and len(todo) > 40, key
    assert "imagen-dead-letter-handler" in alerts["dead_letters"][1]
    assert "imagen-.*-worker" in alerts["oldest_unacked"][1]
    events = monitoring.resource("google_logging_metric", "job_events")
    named = set(one(events["for_each"]).removeprefix("${toset(").removesuffix(")}").strip("[]").split(", "))
    assert {n.strip('"') for n in named} == {"job_done", "job_failed"}
    assert all(hasattr(logs, n.strip('"')) for n in named)  # the events the functions emit
    down = monitoring.resource("google_logging_metric", "service_down")
    assert 'jsonPayload.event="service_down"' in one(down["filter"]) and hasattr(logs, "service_down")
    assert one(down["label_extractors"]) == {"service": "EXTRACT(jsonPayload.service)"}
    root = load(TERRAFORM).named("module")
    assert one(root["monitoring"]["notification_email"]) == "${var.notification_email}"


def test_each_worker_gets_the_time_plan_and_wait_settings_config_reads() -> None:
    """FUNCTION_TIMEOUT_S, JOB_TIME_LIMIT_S, TILE_SECONDS, TRITON_PROBE_S on the workers,
    WAIT_HORIZON_S on every function (the dead-letter handler judges a waiting job too); the
    defaults are the code's, and a TILE_SECONDS Terraform renders is one Config parses."""
    functions = load(TERRAFORM / "modules" / "functions")
    worker_env, common_env = functions.env(functions.locals()["worker_env"]), functions.locals()["common_env"]
    assert worker_env["FUNCTION_TIMEOUT_S"] == "${tostring(var.worker_timeout_seconds)}"
    assert worker_env["JOB_TIME_LIMIT_S"] == "${tostring(var.job_time_limit_seconds)}"
    assert worker_env["TRITON_PROBE_S"] == "${tostring(var.triton_probe_seconds)}"
    assert "var.tile_seconds" in worker_env["TILE_SECONDS"]
    assert common_env["WAIT_HORIZON_S"] == "${tostring(var.wait_horizon_seconds)}"
    assert "JOB_TIME_LIMIT_S" not in common_env  # Config refuses it past the default timeout elsewhere

    variables = functions.named("variable")
    defaults = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
    assert defaults.function_timeout_s == one(variables["worker_timeout_seconds"]["default"])
    assert defaults.job_time_limit_s == one(variables["job_time_limit_seconds"]["default"])
    assert defaults.wait_horizon_s == one(variables["wait_horizon_seconds"]["default"])
    assert defaults.triton_probe_s == one(variables["triton_probe_seconds"]["default"])
    assert one(variables["tile_seconds"]["default"]) == {}  # empty: the code's own figures
    root = load(TERRAFORM).named("variable")
    for name in ("job_time_limit_seconds", "wait_horizon_seconds", "triton_probe_seconds", "tile_seconds"):
        assert one(root[name]["default"]) == one(variables[name]["default"]), name
    assert one(
        load(TERRAFORM / "modules" / "monitoring").named("variable")["wait_horizon_seconds"]["default"]
    ) == (defaults.wait_horizon_s)

    # tile_seconds accepts exactly the Triton models Config knows, and renders what it parses.
    condition = one(one(variables["tile_seconds"]["validation"])["condition"])
    assert set(re.findall(r'"(\w+)"', condition)) == set(TRITON_MODELS)
    rendered = worker_env["TILE_SECONDS"]
    assert rendered == '${join(",", [for m, s in var.tile_seconds : "${m}=${s}"])}'
    parsed = Config.from_env(
        {"GOOGLE_CLOUD_PROJECT": "p", "TILE_SECONDS": "upscale=0.03,background_remove=0.2"}
    )
    assert parsed.tile_seconds["upscale"] == 0.03 and parsed.tile_seconds["background_remove"] == 0.2
    assert parsed.tile_seconds["enhance"] == defaults.tile_seconds["enhance"]
    assert (
        Config.from_env({"GOOGLE_CLOUD_PROJECT": "p", "TILE_SECONDS": ""}).tile_seconds
        == defaults.tile_seconds
    )


def test_terraform_and_config_leave_the_same_room_inside_the_timeout() -> None:
    """Both refuse a time limit that leaves less than one Triton request and 30 s of the timeout."""
    job = load(TERRAFORM / "modules" / "functions").resource("google_cloudfunctions2_function", "on_job")
    condition = one(one(one(job["lifecycle"])["precondition"])["condition"])
    room = int(re.search(r"worker_timeout_seconds - (\d+)", condition).group(1))  # type: ignore[union-attr]
    assert room == Config.triton_timeout_s + 30
    production = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
    assert production.job_time_limit_s <= production.function_timeout_s - room
