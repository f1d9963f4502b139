"""The trace context an invocation carries to the server in its ``headers`` (W3C ``traceparent``), as the
SignalR .NET client does since .NET 9: the current span's, when an application configured a tracer provider."""

from __future__ import annotations

from opentelemetry import propagate, trace

_OFF = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def headers() -> dict[str, str] | None:
    """The current trace context as invocation headers; None when tracing is off or no span is current."""
    if isinstance(trace.get_tracer_provider(), _OFF) or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None
