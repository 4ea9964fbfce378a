"""Terraform and the code that reads its values agree: the worker's memory, the log events the
alerts count. (Here, not in tests/terraform: these import the core, which `nox -s tf` does not
install.)"""

from __future__ import annotations

from imagen import logs
from imagen.config import Config
from imagen.models import VARIANTS
from tests.terraform.hcl import TERRAFORM, load, one


def test_each_worker_knows_its_memory_and_concurrency_and_config_defaults_match() -> None:
    """The per-job memory budget is derived from what Terraform gives each on_job instance."""
    functions = load(TERRAFORM / "modules" / "functions")
    fn = functions.resource("google_cloudfunctions2_function", "on_job")
    env = one(one(fn["service_config"])["environment_variables"])
    assert "local.worker_env" in env and "local.common_env" in env
    worker_env = functions.locals()["worker_env"]
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
    }
    for key, (title, query, hold_s, todo) in alerts.items():
        assert title.startswith("imagen: ") and query and int(hold_s) > 0 and len(todo) > 40, key
    assert "imagen-dead-letter-handler" in alerts["dead_letters"][1]
    assert "imagen-.*-worker" in alerts["oldest_unacked"][1]
    events = monitoring.resource("google_logging_metric", "job_events")
    named = set(one(events["for_each"]).removeprefix("${toset(").removesuffix(")}").strip("[]").split(", "))
    assert {n.strip('"') for n in named} == {"job_done", "job_failed"}
    assert all(hasattr(logs, n.strip('"')) for n in named)  # the events the functions emit
    root = load(TERRAFORM).named("module")
    assert one(root["monitoring"]["notification_email"]) == "${var.notification_email}"
