"""A span per hub invocation (OpenTelemetry), as ASP.NET Core SignalR makes since .NET 9: named
``{hub}/{method}``, of kind SERVER, its parent the trace context that the client put in the invocation's
``headers`` (W3C ``traceparent``). With no tracer provider configured, an invocation pays one check."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import propagate, trace

tracer = trace.get_tracer("gateway")
_OFF = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


_NO_SPAN = contextlib.nullcontext()
"""What ``invocation`` gives when tracing is off (it holds no state: one serves every call)."""
_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
"""A provider named by the environment is made on first use: then ask the API each time."""


def enabled() -> bool:
    """Whether an application configured a tracer provider (the API's defaults record nothing). Read from the
    API's global where it has one (``get_tracer_provider`` looks the environment up on every call)."""
    provider = getattr(trace, "_TRACER_PROVIDER", _OFF) if not _FROM_ENV else _OFF
    if provider is _OFF:
        return not isinstance(trace.get_tracer_provider(), _OFF)
    return provider is not None and not isinstance(provider, _OFF)


@contextlib.contextmanager
def _span(hub: str, method: str, connection_id: str, headers: Mapping[str, str] | None) -> Iterator[Any]:
    parent = propagate.extract(headers) if headers else None
    attributes = {"rpc.system": "signalr", "rpc.service": hub, "rpc.method": method,
                  "signalr.connection.id": connection_id}
    with tracer.start_as_current_span(f"{hub}/{method}", parent, trace.SpanKind.SERVER, attributes) as span:
        yield span


def invocation(
    hub: str, method: str, connection_id: str, headers: Mapping[str, str] | None,
) -> contextlib.AbstractContextManager[Any]:
    """The span of one invocation, current while the hub method runs; a no-op context when tracing is off."""
    if not enabled():
        return _NO_SPAN
    return _span(hub, method, connection_id, headers)


def failed(error: BaseException) -> None:
    """Mark the current invocation's span as failed with ``error`` (a no-op when tracing is off)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(error)
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
        span.set_attribute("error.type", type(error).__qualname__)
