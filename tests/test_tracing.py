"""A span per hub invocation, its parent the client's span carried in the invocation's headers (traceparent)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from live import Live, serve_gateways
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway import Gateway
from gateway.client import HubClient
from gateway.demo.hubs import EchoHub

TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")


class TracedHub(EchoHub):
    async def fail(self, message: str) -> None:
        raise ValueError(message)


def install_exporter() -> InMemorySpanExporter:
    """An in-memory exporter on the process's tracer provider (installed once: the API allows one)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return install_exporter()


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with serve_gateways({"/hub": Gateway(TracedHub, name="traced")}) as server:
        yield server


def server_spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name and s.kind is trace.SpanKind.SERVER]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_python_client_invocation_is_the_parent_of_one_server_span(
    live: Live, exporter: InMemorySpanExporter, transport: str,
) -> None:
    exporter.clear()
    client = HubClient(live.url("/hub"), transport=transport)
    await client.start()
    try:
        with trace.get_tracer("test").start_as_current_span("page action") as parent:
            assert await client.invoke("Echo", "x") == "x"
    finally:
        await client.close()
    await asyncio.sleep(0.05)
    spans = server_spans(exporter, "traced/Echo")
    assert len(spans) == 1
    span = spans[0]
    assert span.parent is not None and span.parent.is_remote
    assert (span.parent.trace_id, span.parent.span_id) == (parent.get_span_context().trace_id,
                                                          parent.get_span_context().span_id)
    assert span.attributes is not None
    assert (span.attributes["rpc.system"], span.attributes["rpc.method"]) == ("signalr", "Echo")
    assert span.attributes["signalr.connection.id"] == client.connection_id


async def test_an_invocation_without_a_client_span_starts_a_trace_and_a_failure_marks_it(
    live: Live, exporter: InMemorySpanExporter,
) -> None:
    exporter.clear()
    client = HubClient(live.url("/hub"), transport="WebSockets")
    await client.start()
    try:
        assert await client.invoke("Echo", 1) == 1
        with pytest.raises(Exception, match="error"):
            await client.invoke("Fail", "boom")
    finally:
        await client.close()
    await asyncio.sleep(0.05)
    (echo,) = server_spans(exporter, "traced/Echo")
    assert echo.parent is None
    (failed,) = server_spans(exporter, "traced/Fail")
    assert failed.status.status_code is trace.StatusCode.ERROR
