"""Tracing: one trace per job across on_upload → on_job → Triton, off unless OTEL_ENABLED.

The trace context travels in the job message's Pub/Sub attributes (W3C `traceparent`). Spans
go to OTEL_EXPORTER_OTLP_ENDPOINT over OTLP/HTTP; with tracing off the API's no-op tracer is
used and nothing is exported or injected.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_provider: Any = None  # the TracerProvider in use, once configured


def configure(enabled: bool, endpoint: str, service: str) -> None:
    """Install an OTLP-exporting provider for this process (idempotent; no-op when disabled)."""
    global _provider
    if not enabled or _provider is not None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = (
        OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces") if endpoint else OTLPSpanExporter()
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider


def use(provider: Any) -> None:
    """Use this provider (tests pass one with an in-memory exporter)."""
    global _provider
    _provider = provider


def tracer() -> trace.Tracer:
    if _provider is None:
        return trace.NoOpTracer()
    tracer_: trace.Tracer = _provider.get_tracer("imagen")
    return tracer_


def inject() -> dict[str, str]:
    """The current trace context as message attributes (empty when tracing is off)."""
    carrier: dict[str, str] = {}
    if _provider is not None:
        _PROPAGATOR.inject(carrier)
    return carrier


@contextmanager
def span(
    name: str, parent: Mapping[str, str] | None = None, attributes: Mapping[str, Any] | None = None
) -> Iterator[Any]:
    """A span, continuing the trace in `parent` (message attributes) when given."""
    token = None
    if parent:
        token = context.attach(_PROPAGATOR.extract(dict(parent)))
    try:
        with tracer().start_as_current_span(name, attributes=dict(attributes or {})) as current:
            yield current
    finally:
        if token is not None:
            context.detach(token)


def trace_id() -> str | None:
    """The current trace id as hex, for log correlation (None when not tracing)."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
