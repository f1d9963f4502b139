"""Interoperability with a client nobody here wrote: the official @microsoft/signalr (npm, pinned in package.json).

Loaded in Chromium on the harness page at the gateway's origin, it connects to the demo's hubs on WebSockets,
ServerSentEvents and LongPolling (negotiating each time), and with stateful reconnect on WebSockets: Echo answers,
EchoPush calls back, and a job's progress arrives complete and in order, the same as our own client receives it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute

from .conftest import STEP_MS, STEPS
from .harness import Harness, checked_sequence

SIGNALR_JS = Path(__file__).resolve().parent / "node_modules/@microsoft/signalr/dist/browser/signalr.js"

SIGNALR_HELPERS = r"""
(() => {
  const SR = window.SR = {
    progress: [], echoes: [], log: [], closed: [], reconnected: 0,
    build(hub, transport, stateful) {
      const logger = { log: (level, message) => {
        if (level >= signalR.LogLevel.Warning) SR.log.push(signalR.LogLevel[level] + ": " + message);
      }};
      let b = new signalR.HubConnectionBuilder()
        .withUrl(E2E.base + hub, {transport: signalR.HttpTransportType[transport], skipNegotiation: false})
        .configureLogging(logger);
      if (stateful) b = b.withStatefulReconnect();
      const c = b.build();
      c.onclose((e) => SR.closed.push(String(e || "")));
      return c;
    },
    async echo(transport, stateful, payload) {
      const c = SR.build("/hubs/echo", transport, stateful);
      c.on("echo", (x) => { SR.echoes.push(x); });
      await c.start();
      const answer = await c.invoke("Echo", payload);
      await c.invoke("EchoPush", payload);
      for (let i = 0; i < 100 && SR.echoes.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await c.stop();
      return {answer: answer, pushed: SR.echoes};
    },
    async connectJobs(transport, stateful) {
      const c = SR.jobs = SR.build("/hubs/jobs", transport, stateful);
      c.on("progress", (m) => { SR.progress.push(m); });
      await c.start();
      return c.state;
    },
    async subscribe(id) { return await SR.jobs.invoke("Subscribe", id); },
    finished(id) { return SR.progress.some((m) => m.jobId === id && ["Completed", "Failed"].includes(m.state)); },
    async stop() { if (SR.jobs) await SR.jobs.stop(); },
  };
})();
"""

CASES = [
    ("WebSockets", False),
    ("ServerSentEvents", False),
    ("LongPolling", False),
    ("WebSockets", True),
]


@pytest.fixture
def signalr_page(page: Page, gateway: str) -> Iterator[Harness]:
    assert SIGNALR_JS.exists(), f"{SIGNALR_JS} is missing: run scripts/setup.sh (npm ci in e2e/)"
    h = Harness.at_gateway(page, gateway, load_client=False)
    page.add_script_tag(path=str(SIGNALR_JS))
    assert page.evaluate("() => typeof signalR.HubConnectionBuilder") == "function"
    page.evaluate(SIGNALR_HELPERS)
    yield h
    page.evaluate("() => SR.stop()")


def run_job(h: Harness, transport: str, stateful: bool) -> tuple[str, Any]:
    assert h.page.evaluate("([t, s]) => SR.connectJobs(t, s)", [transport, stateful]) == "Connected"
    job = h.start_job(STEPS, STEP_MS)
    snapshot = h.page.evaluate("(id) => SR.subscribe(id)", job)
    return job, snapshot


def progress_of(h: Harness, job: str) -> list[dict[str, Any]]:
    return [m for m in h.page.evaluate("() => SR.progress") if m.get("jobId") == job]


@pytest.mark.parametrize(
    ("transport", "stateful"), CASES, ids=[f"{t}{'-stateful' if s else ''}" for t, s in CASES]
)
def test_official_client(
    signalr_page: Harness, reference_run: Callable[..., list[dict[str, Any]]], transport: str, stateful: bool
) -> None:
    h = signalr_page
    payload = {"text": "hi", "list": [1, "two", None], "nested": {"ok": True}}
    echoed = h.page.evaluate("([t, s, p]) => SR.echo(t, s, p)", [transport, stateful, "hi"])
    assert echoed == {"answer": "hi", "pushed": ["hi"]}
    h.page.evaluate("() => { SR.echoes.length = 0; }")
    echoed = h.page.evaluate("([t, s, p]) => SR.echo(t, s, p)", [transport, stateful, payload])
    assert echoed == {"answer": payload, "pushed": [payload]}

    job, snapshot = run_job(h, transport, stateful)
    h.page.wait_for_function("(id) => SR.finished(id)", arg=job, timeout=20_000)
    assert checked_sequence(job, snapshot, progress_of(h, job)) == reference_run()

    # The official client really used the transport asked for, on both hubs, and never saw ForeverFrame.
    for hub in ("/hubs/echo", "/hubs/jobs"):
        streams = h.wire.streams(hub)
        assert streams[transport] >= 1, (hub, streams)
        assert all(n == 0 for name, n in streams.items() if name != transport), (hub, streams)
        assert len(h.wire.negotiates(hub)) == (2 if hub == "/hubs/echo" else 1)
        for negotiate in h.wire.negotiates(hub):  # without the ForeverFrame opt-in: exactly the spec's three
            response = negotiate.response()
            assert response is not None
            listed = [t["transport"] for t in response.json()["availableTransports"]]
            assert listed == ["WebSockets", "ServerSentEvents", "LongPolling"], listed
    if stateful:
        negotiate = h.wire.negotiates("/hubs/jobs")[0]
        assert "useStatefulReconnect=true" in negotiate.url, negotiate.url
    assert h.page.evaluate("() => SR.log") == [], "the official client logged warnings or errors"


def test_official_client_stateful_reconnect_replays_after_a_websocket_cut(
    signalr_page: Harness, page: Page, reference_run: Callable[..., list[dict[str, Any]]]
) -> None:
    """With stateful reconnect, the official client resumes a cut WebSocket and the server replays the gap."""
    sockets: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/hubs/jobs"), route)
    h = signalr_page
    job, snapshot = run_job(h, "WebSockets", True)
    h.page.wait_for_function("(id) => SR.progress.filter((m) => m.jobId === id).length >= 3", arg=job)
    sockets[-1].close(code=1006)
    h.page.wait_for_function("(id) => SR.finished(id)", arg=job, timeout=30_000)
    assert len(sockets) >= 2, "the official client did not open a new WebSocket"
    assert h.page.evaluate("() => SR.closed") == [], "the connection closed instead of resuming"
    assert checked_sequence(job, snapshot, progress_of(h, job)) == reference_run()
