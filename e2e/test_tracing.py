"""The browser client's invocations carry the page's trace context (the trace entry, ``Gateway.traced``): the
server's span of the invocation is the child of the page's span. The server runs in this process, so that an
in-memory exporter sees its spans."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from playwright.sync_api import Page
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway import Gateway
from gateway.demo.hubs import EchoHub

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from live import serve  # noqa: E402
from test_tracing import install_exporter  # noqa: E402

PAGE = """<!doctype html><script src="/hub/client.js"></script><script src="/hub/client.trace.js"></script>"""
TRANSPORTS = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return install_exporter()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    gateway = Gateway(EchoHub, name="browser")
    app = Starlette(routes=[Route("/", page), gateway.route("/hub")])
    with serve(app) as live:
        yield live.origin


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_page_invocation_is_the_parent_of_one_server_span(
    page: Page, base: str, exporter: InMemorySpanExporter, transport: str,
) -> None:
    exporter.clear()
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    page.goto(base + "/")
    result = page.evaluate("""async ([transport, traceparent]) => {
        const c = new Gateway.HubConnection("/hub", {transports: [transport],
                                                     protocol: Gateway.traced(() => ({traceparent}))});
        await c.start();
        const echoed = await c.invoke("Echo", 42);
        await c.stop();
        return echoed;
    }""", [transport, f"00-{trace_id}-{span_id}-01"])
    assert result == 42
    spans = [s for s in exporter.get_finished_spans() if s.name == "browser/Echo"]
    assert len(spans) == 1
    parent = spans[0].parent
    assert parent is not None and parent.is_remote
    assert (parent.trace_id, parent.span_id) == (int(trace_id, 16), int(span_id, 16))
    assert spans[0].kind is trace.SpanKind.SERVER
