"""A live transport cut in the middle of a job: the client resumes and the progress has no gap and no duplicate.

The cut is made for real, below the browser: the page talks to the gateway through a TCP relay (`relay` fixture),
and the test resets every connection through it while the job runs, with whatever bytes were in flight lost, then
refuses new connections for a moment (an outage). Chromium's offline emulation is no substitute: it leaves open
streams running. The WebSocket cases use Playwright's WebSocket routing too, to cut one socket and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute

from .harness import TRANSPORTS, Harness
from .servers import CuttableRelay

DROP_STEPS = 30
DROP_STEP_MS = 100
OUTAGE_S = 2.0
START_TIMEOUT_MS = 2000


def assert_resumed_without_loss(h: Harness, job: str, reference: list[dict[str, Any]]) -> None:
    try:
        h.page.wait_for_function(
            "() => E2E.events.some((e) => e.type === 'reconnected' || e.type === 'close')", timeout=30_000
        )
    except Exception as exc:
        raise AssertionError(f"the client never came back after the drop: {h.state()}") from exc
    events = [e["type"] for e in h.events()]
    assert "reconnecting" in events and "reconnected" in events, f"no drop was seen by the client: {h.state()}"
    assert "close" not in events, h.events()
    # The same connection must have been resumed; a fresh one has lost the job's group and everything sent since.
    last = h.attempts()[-1]
    assert last["outcome"] == "connected" and last["resume"] is True, (
        f"the client did not resume its connection but started a new one: {h.state()}"
    )
    h.wait_finished(job, timeout=30)
    # No gap, no duplicate, and the same content as an undisturbed run.
    assert h.job_sequence(job) == reference


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_outage_mid_job_resumes_without_gap_or_duplicate(
    open_harness: Callable[..., Harness],
    relay: CuttableRelay,
    reference_run: Callable[..., list[dict[str, Any]]],
    transport: str,
) -> None:
    h = open_harness(relay.origin)
    h.start(transports=[transport], start_timeout=START_TIMEOUT_MS)
    job = h.run_job(DROP_STEPS, DROP_STEP_MS)
    h.wait_progress(job, 5)
    cut = relay.outage(OUTAGE_S)
    assert cut >= 1, "nothing was open through the relay to cut"
    seen_at_cut = len(h.progress(job))
    assert seen_at_cut < DROP_STEPS, "the job ended before the cut: the test proves nothing"
    h.page.wait_for_timeout(OUTAGE_S * 1000)
    assert_resumed_without_loss(h, job, reference_run(DROP_STEPS, DROP_STEP_MS))
    assert h.transport() == transport


class WebSocketCutter:
    """Routes the page's hub WebSockets to the server, and can cut them, or refuse new ones."""

    def __init__(self, page: Page) -> None:
        self.routes: list[WebSocketRoute] = []
        self.refuse = False
        page.route_web_socket(re.compile(r"/hubs/"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        if self.refuse:
            ws.close()
            return
        ws.connect_to_server()
        self.routes.append(ws)

    def cut(self) -> None:
        assert self.routes, "no WebSocket to cut"
        ws = self.routes[-1]
        ws.close(code=1011, reason="cut by the test")


def test_websocket_cut_resumes_on_websocket(
    page: Page, open_harness: Callable[..., Harness], gateway: str, reference_run: Callable[..., Any]
) -> None:
    cutter = WebSocketCutter(page)
    h = open_harness(gateway)
    assert h.start(start_timeout=START_TIMEOUT_MS)["transport"] == "WebSockets"
    job = h.run_job(DROP_STEPS, DROP_STEP_MS)
    h.wait_progress(job, 5)
    cutter.cut()
    assert_resumed_without_loss(h, job, reference_run(DROP_STEPS, DROP_STEP_MS))
    assert len(cutter.routes) >= 2, "the client should have opened a new WebSocket to resume"
    assert h.transport() == "WebSockets"


def test_websocket_cut_then_refused_resumes_on_the_next_transport(
    page: Page, open_harness: Callable[..., Harness], gateway: str, reference_run: Callable[..., Any]
) -> None:
    cutter = WebSocketCutter(page)
    h = open_harness(gateway)
    assert h.start(start_timeout=START_TIMEOUT_MS)["transport"] == "WebSockets"
    job = h.run_job(DROP_STEPS, DROP_STEP_MS)
    h.wait_progress(job, 5)
    cutter.refuse = True
    cutter.cut()
    assert_resumed_without_loss(h, job, reference_run(DROP_STEPS, DROP_STEP_MS))
    assert h.transport() == "ServerSentEvents", h.state()
    resumed = [(a["transport"], a["outcome"]) for a in h.attempts() if a["resume"]]
    assert ("ServerSentEvents", "connected") in resumed, h.attempts()
