"""Cloud Functions entry points: config and services built once, then handed to the handlers.

A deployed function serves one of these entry points, so each imports its handler on its first
call: what the others need (numpy, Pillow, pyvips, tritonclient) is not on its path. A worker
(MODEL_NAME set: on_job) imports its handler at start, so an instance kept warm by
min_instances is warm to its first job.
"""

from __future__ import annotations

import importlib

import flask
import functions_framework
from cloudevents.http import CloudEvent

from imagen.cloud.signing import url_signer
from imagen.core import logs, tracing
from imagen.core.config import Config
from imagen.flow.services import Services

CONFIG = Config.from_env()
SERVICES = Services.from_config(CONFIG)
SIGNER = url_signer()
logs.configure(CONFIG.project)
tracing.configure(CONFIG.otel_enabled, CONFIG.otel_endpoint, f"imagen-{CONFIG.model_name or 'functions'}")
if CONFIG.model_name:  # a worker (on_job), whose every job needs the stack: imported at start
    importlib.import_module("imagen.handlers.worker")


@functions_framework.cloud_event
def on_upload(event: CloudEvent) -> None:
    """Storage object finalized → job in Firestore + message on the model's topic."""
    from imagen.handlers.upload import handle_upload

    handle_upload(CONFIG, SERVICES, event["type"], event.get_data())


@functions_framework.cloud_event
def on_job(event: CloudEvent) -> None:
    """Pub/Sub message on imagen-<MODEL_NAME> → the job run through Triton to done or failed."""
    from imagen.handlers.worker import handle_job

    handle_job(CONFIG, SERVICES, event["type"], event.get_data())


@functions_framework.cloud_event
def on_dead_letter(event: CloudEvent) -> None:
    """Pub/Sub message on imagen-dead-letter → the job marked failed with the reason."""
    from imagen.handlers.dead_letter import handle_dead_letter

    handle_dead_letter(CONFIG, SERVICES, event["type"], event.get_data())


@functions_framework.cloud_event
def on_reconcile(event: CloudEvent) -> None:
    """A tick on imagen-reconcile (Cloud Scheduler) → stuck jobs published again."""
    from imagen.handlers.reconciler import handle_reconcile

    handle_reconcile(CONFIG, SERVICES, event["type"], event.get_data())


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    """The HTTP API: POST /api/v1/images/{model}, GET /api/v1/jobs/{id}, GET /health."""
    from imagen.handlers import api as http_api

    return http_api.reply(http_api.handle_api(CONFIG, SERVICES, request, SIGNER))
