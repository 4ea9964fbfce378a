"""One trace per job: on_upload → on_job → Triton, the context carried in message attributes.

The handlers run in this process (an in-memory span exporter can only see spans here) against
the real emulators and Triton, with their own topic prefix and jobs collection.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from imagen.core import tracing
from imagen.core.config import Config
from imagen.core.names import Resources
from imagen.flow.services import Services
from imagen.handlers.upload import handle_upload
from imagen.handlers.worker import handle_job
from imagen.jobs import messages

from .conftest import SAMPLE, Harness


@pytest.fixture
def traced(
    cfg: Config, harness: Harness, triton: Any, unique: str
) -> Iterator[tuple[InMemorySpanExporter, Config, Services, Any]]:
    names = Resources(cfg.project, topic_prefix=f"trace-{unique}-", jobs_collection=f"trace-jobs-{unique}")
    traced_cfg = dataclasses.replace(cfg, names=names, model_name="style_aged", otel_enabled=True)
    svc = Services.from_config(traced_cfg)
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    for topic in (names.job_topic("style_aged"), names.events_topic):
        pub.create_topic(name=names.topic_path(topic))
    subscription = names.subscription_path(names.job_subscription("style_aged"))
    sub.create_subscription(name=subscription, topic=names.topic_path(names.job_topic("style_aged")))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield exporter, traced_cfg, svc, (sub, subscription)
    finally:
        tracing.use(None)
        sub.delete_subscription(subscription=subscription)
        for topic in (names.job_topic("style_aged"), names.events_topic):
            pub.delete_topic(topic=names.topic_path(topic))


def test_one_trace_per_job_across_functions_and_triton(
    harness: Harness, traced: tuple[InMemorySpanExporter, Config, Services, Any], unique: str
) -> None:
    exporter, cfg, svc, (sub, subscription) = traced
    event = harness.put(f"style_aged/trace-{unique}/cat.jpg", SAMPLE.read_bytes())
    job_id = handle_upload(cfg, svc, messages.STORAGE_FINALIZED, event)
    assert job_id

    received = sub.pull(subscription=subscription, max_messages=1, timeout=30).received_messages
    assert received, "on_upload published no job message"
    message = received[0].message
    assert "traceparent" in message.attributes
    push = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
        },
        "subscription": subscription,
    }
    handle_job(cfg, svc, messages.PUBSUB_PUBLISHED, push)
    assert (svc.jobs.document(job_id) or {})["status"] == "done"

    spans = {s.name: s for s in exporter.get_finished_spans()}
    upload, job = spans["imagen.on_upload"], spans["imagen.on_job"]
    infers = [s for s in exporter.get_finished_spans() if s.name == "triton.infer"]
    assert infers, "no Triton span"
    trace_ids = {s.context.trace_id for s in [upload, job, *infers]}
    assert len(trace_ids) == 1, "the job's spans are not one trace"
    assert upload.parent is None
    assert job.parent is not None and job.parent.span_id == upload.context.span_id
    assert all(s.parent is not None and s.parent.span_id == job.context.span_id for s in infers)
    assert job.attributes is not None and job.attributes["imagen.job_id"] == job_id
