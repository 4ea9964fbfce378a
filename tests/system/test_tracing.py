"""One trace per job: on_upload → on_job → Triton, the context carried in message attributes.

The functions' code runs in this process (an in-memory span exporter can only see spans here)
against the real emulators and Triton of the test stack, on its own topic prefix and jobs
collection so the stack's workers never see these messages.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from imagen import clients, config, events, pipeline, tracing

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "cat.jpg"


@pytest.fixture
def traced(
    stack: Any, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[InMemorySpanExporter, Any]]:
    prefix = f"trace-{unique}-"
    monkeypatch.setenv("TOPIC_PREFIX", prefix)
    monkeypatch.setenv("JOBS_COLLECTION", f"trace-jobs-{unique}")
    monkeypatch.setenv("MODEL_NAME", "style_aged")
    monkeypatch.setenv("OTEL_ENABLED", "true")
    caches = [config.get, clients.gcs, clients.jobs, clients.publisher, clients.triton]
    for cached in caches:
        cached.cache_clear()
    pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = pub.topic_path(stack.project, f"{prefix}style_aged")
    pub.create_topic(name=topic)
    subscription = sub.subscription_path(stack.project, f"{prefix}pull")
    sub.create_subscription(name=subscription, topic=topic)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield exporter, (sub, subscription)
    finally:
        tracing.use(None)
        sub.delete_subscription(subscription=subscription)
        pub.delete_topic(topic=topic)
        for cached in caches:
            cached.cache_clear()


def test_one_trace_per_job_across_functions_and_triton(
    bucket: Any, traced: tuple[InMemorySpanExporter, Any], unique: str
) -> None:
    exporter, (sub, subscription) = traced
    cfg = config.get()
    assert cfg.otel_enabled and cfg.topic_prefix.startswith("trace-")

    blob = bucket.blob(f"style_aged/trace-{unique}/cat.jpg")
    blob.upload_from_filename(str(SAMPLE))
    job_id = pipeline.handle_upload(cfg, events.STORAGE_FINALIZED, blob._properties)
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
    pipeline.handle_job(cfg, events.PUBSUB_PUBLISHED, push)
    assert (clients.jobs().get(job_id) or {})["status"] == "done"

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


def test_tracing_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_ENABLED", raising=False)
    assert config.Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"}).otel_enabled is False
    assert tracing.inject() == {}
