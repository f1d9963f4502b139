"""Every fallback forced for real: the transport finally in use, the attempt trace, and the same messages.

The client is left to choose (no `transports` option: whatever the server offers, in its order), with a start
timeout of 2 s so that a transport that never confirms its start costs 2 s, not the default 5.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute

from .conftest import STEP_MS, STEPS, GatewayFactory
from .harness import Harness

START_TIMEOUT_MS = 2000
HUB_SOCKETS = re.compile(r"/hubs/")


def refuse_websockets(page: Page) -> None:
    """Every WebSocket to a hub is closed before it opens, as by a proxy that refuses upgrades."""
    page.route_web_socket(HUB_SOCKETS, lambda ws: ws.close())


def hang_websockets(page: Page) -> None:
    """Every WebSocket to a hub opens (to the page) and then never carries a byte: no server behind it."""

    def handler(ws: WebSocketRoute) -> None:
        return None

    page.route_web_socket(HUB_SOCKETS, handler)


def run_and_compare(h: Harness, reference: list[dict[str, Any]]) -> None:
    job = h.run_job(STEPS, STEP_MS)
    h.wait_finished(job)
    assert h.job_sequence(job) == reference, "the fallen-back transport delivered other progress than WebSockets"


def attempts_by_transport(h: Harness) -> dict[str, dict[str, Any]]:
    return {a["transport"]: a for a in h.attempts()}


def assert_trace(h: Harness, expected: list[tuple[str, str]]) -> None:
    state = h.state()
    assert h.trace() == expected, state
    # The onattempt records and c.attempts tell the same story.
    assert state["connAttempts"] is not None, "HubConnection.attempts is missing"
    assert [(a["transport"], a["outcome"]) for a in state["connAttempts"]] == expected, state
    for a in h.attempts():
        assert a["resume"] is False, a
        assert isinstance(a["ms"], (int, float)) and a["ms"] >= 0, a
        if a["outcome"] != "connected":
            assert a["reason"], f"an attempt that did not connect must say why: {a}"


def test_websocket_refused_falls_back_to_sse(
    page: Page, open_harness: Callable[..., Harness], gateway: str, reference_run: Callable[..., Any]
) -> None:
    refuse_websockets(page)
    h = open_harness(gateway)
    started = h.start(start_timeout=START_TIMEOUT_MS)
    assert started["transport"] == "ServerSentEvents", started
    assert_trace(h, [("WebSockets", "failed"), ("ServerSentEvents", "connected")])
    refused = attempts_by_transport(h)["WebSockets"]
    assert refused["ms"] < START_TIMEOUT_MS * 0.75, f"a refused WebSocket must fail at once, not time out: {refused}"
    run_and_compare(h, reference_run())


def test_websocket_that_hangs_falls_back_to_sse_within_the_start_timeout(
    page: Page, open_harness: Callable[..., Harness], gateway: str, reference_run: Callable[..., Any]
) -> None:
    hang_websockets(page)
    h = open_harness(gateway)
    started = h.start(start_timeout=START_TIMEOUT_MS)
    assert started["transport"] == "ServerSentEvents", started
    assert_trace(h, [("WebSockets", "failed"), ("ServerSentEvents", "connected")])
    hung = attempts_by_transport(h)["WebSockets"]
    assert START_TIMEOUT_MS * 0.9 <= hung["ms"] <= START_TIMEOUT_MS + 1000, hung
    assert started["ms"] <= START_TIMEOUT_MS + 3000, f"start took {started['ms']} ms"
    run_and_compare(h, reference_run())


def test_no_websocket_and_no_eventsource_falls_back_to_foreverframe(
    page: Page, open_harness: Callable[..., Harness], gateway: str, reference_run: Callable[..., Any]
) -> None:
    page.add_init_script("delete window.EventSource;")
    refuse_websockets(page)
    h = open_harness(gateway)
    assert h.page.evaluate("() => typeof EventSource") == "undefined"
    started = h.start(start_timeout=START_TIMEOUT_MS)
    assert started["transport"] == "ForeverFrame", started
    assert_trace(h, [("WebSockets", "failed"), ("ServerSentEvents", "skipped"), ("ForeverFrame", "connected")])
    assert h.wire.streams()["ServerSentEvents"] == 0, "a skipped transport must cost no request"
    run_and_compare(h, reference_run())


def test_buffering_proxy_without_upgrades_falls_back_to_long_polling(
    open_harness: Callable[..., Harness],
    gateway: str,
    nginx_buffering_proxy: Callable[[str], str],
    reference_run: Callable[..., Any],
) -> None:
    proxy = nginx_buffering_proxy(gateway)
    h = open_harness(proxy)
    started = h.start(start_timeout=START_TIMEOUT_MS)
    assert started["transport"] == "LongPolling", started
    assert_trace(
        h,
        [
            ("WebSockets", "failed"),
            ("ServerSentEvents", "failed"),
            ("ForeverFrame", "failed"),
            ("LongPolling", "connected"),
        ],
    )
    attempts = attempts_by_transport(h)
    for buffered in ("ServerSentEvents", "ForeverFrame"):
        # Accepted and held by the proxy: only the start timeout can tell, and it must.
        assert START_TIMEOUT_MS * 0.9 <= attempts[buffered]["ms"] <= START_TIMEOUT_MS + 1000, attempts[buffered]
    streams = h.wire.streams()
    assert streams["ServerSentEvents"] >= 1 and streams["ForeverFrame"] >= 1, streams
    run_and_compare(h, reference_run())


def test_server_offering_only_long_polling_costs_no_wasted_attempt(
    open_harness: Callable[..., Harness], gateway_server: GatewayFactory, reference_run: Callable[..., Any]
) -> None:
    lp_only = gateway_server(transports=["LongPolling"])
    h = open_harness(lp_only)
    started = h.start()
    assert started["transport"] == "LongPolling", started
    assert_trace(h, [("LongPolling", "connected")])
    assert len(h.wire.negotiates()) == 1
    streams = h.wire.streams()
    assert streams["WebSockets"] == streams["ServerSentEvents"] == streams["ForeverFrame"] == 0, streams
    run_and_compare(h, reference_run())


@pytest.mark.parametrize("forced", ["WebSockets", "ServerSentEvents", "ForeverFrame"])
def test_forced_transport_that_cannot_work_fails_start_with_its_reason(
    page: Page, open_harness: Callable[..., Harness], gateway: str, forced: str
) -> None:
    """With `transports` restricted to one that is blocked, start() rejects and says why; no silent hang."""
    refuse_websockets(page)
    page.add_init_script("delete window.EventSource;")
    page.route(re.compile(r".*[?&]transport=ForeverFrame"), lambda route: route.abort())
    h = open_harness(gateway)
    error = h.start_error(transports=[forced], start_timeout=START_TIMEOUT_MS)
    assert forced in error, f"the error should name the transport that failed: {error!r}"
    outcomes = [a["outcome"] for a in h.attempts()]
    assert "connected" not in outcomes, h.attempts()
