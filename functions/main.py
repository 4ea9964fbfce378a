"""Cloud Functions entry points: thin wrappers over imagen.pipeline."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from imagen import config, pipeline, tracing

_cfg = config.get()
tracing.configure(_cfg.otel_enabled, _cfg.otel_endpoint, f"imagen-{_cfg.model_name or 'functions'}")


@functions_framework.cloud_event
def on_upload(event: CloudEvent) -> None:
    """Storage object finalized → job in Firestore + message on the model's topic."""
    pipeline.handle_upload(config.get(), event["type"], event.get_data())


@functions_framework.cloud_event
def on_job(event: CloudEvent) -> None:
    """Pub/Sub message on imagen-<MODEL_NAME> → the job run through Triton to done or failed."""
    pipeline.handle_job(config.get(), event["type"], event.get_data())


@functions_framework.cloud_event
def on_dead_letter(event: CloudEvent) -> None:
    """Pub/Sub message on imagen-dead-letter → the job marked failed with the reason."""
    pipeline.handle_dead_letter(config.get(), event["type"], event.get_data())
