"""Turning the gateway's metrics on for Prometheus: the OpenTelemetry SDK with its Prometheus reader, and an ASGI
app answering ``GET /metrics`` in the Prometheus text format. Needs the ``otel`` extra (``gateway[otel]``).

The instruments themselves (``server/metrics.py``) use only the OpenTelemetry API; an application that configures
its own ``MeterProvider`` (OTLP, another reader) gets them there, and needs none of this module.
"""

from __future__ import annotations

import logging
from typing import Any

from .asgi import Receive, Scope, Send, respond

log = logging.getLogger("gateway")

_registry: Any = None  # the prometheus_client registry our reader fills, once enable_prometheus() ran


def enable_prometheus() -> bool:
    """Install a global ``MeterProvider`` with a Prometheus reader, once per process; False if the ``otel`` extra
    is missing or another provider was installed first (then ``/metrics`` answers 404)."""
    global _registry
    if _registry is not None:
        return True
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import CollectorRegistry
    except ImportError:
        log.warning("metrics: the otel extra is not installed (pip install 'gateway[otel]'); /metrics is off")
        return False
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    metrics.set_meter_provider(provider)
    if metrics.get_meter_provider() is not provider:
        log.warning("metrics: another MeterProvider was installed first; /metrics is off")
        return False
    _registry = registry
    return True


def exposition() -> tuple[bytes, str] | None:
    """The metrics in the Prometheus text format and its content type; None while metrics are off."""
    if _registry is None:
        return None
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(_registry), CONTENT_TYPE_LATEST


async def metrics_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app answering ``GET /metrics``: every instrument, Prometheus text (404 while metrics are off)."""
    text = exposition()
    if text is None:
        await respond(send, 404, b'{"error": "metrics are off"}', "application/json")
        return
    await respond(send, 200, *text)
