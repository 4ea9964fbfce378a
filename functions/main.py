"""Cloud Functions entry points: config and services built once, then handed to the handlers."""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http import CloudEvent

from imagen.cloud.signing import url_signer
from imagen.core import logs, tracing
from imagen.core.config import Config
from imagen.flow.services import Services
from imagen.handlers import api as http_api
from imagen.handlers.dead_letter import handle_dead_letter
from imagen.handlers.reconciler import handle_reconcile
from imagen.handlers.upload import handle_upload
from imagen.handlers.worker import handle_job

CONFIG = Config.from_env()
SERVICES = Services.from_config(CONFIG)
SIGNER = url_signer()
logs.configure(CONFIG.project)
tracing.configure(CONFIG.otel_enabled, CONFIG.otel_endpoint, f"imagen-{CONFIG.model_name or 'functions'}")


@functions_framework.cloud_event
def on_upload(event: CloudEvent) -> None:
    """Storage object finalized → job in Firestore + message on the model's topic."""
    handle_upload(CONFIG, SERVICES, event["type"], event.get_data())


@functions_framework.cloud_event
def on_job(event: CloudEvent) -> None:
    """Pub/Sub message on imagen-<MODEL_NAME> → the job run through Triton to done or failed."""
    handle_job(CONFIG, SERVICES, event["type"], event.get_data())


@functions_framework.cloud_event
def on_dead_letter(event: CloudEvent) -> None:
    """Pub/Sub message on imagen-dead-letter → the job marked failed with the reason."""
    handle_dead_letter(CONFIG, SERVICES, event["type"], event.get_data())


@functions_framework.cloud_event
def on_reconcile(event: CloudEvent) -> None:
    """A tick on imagen-reconcile (Cloud Scheduler) → stuck jobs published again."""
    handle_reconcile(CONFIG, SERVICES, event["type"], event.get_data())


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    """The HTTP API: POST /api/v1/images/{model}, GET /api/v1/jobs/{id}, GET /health."""
    return http_api.reply(http_api.handle_api(CONFIG, SERVICES, request, SIGNER))
