"""Shared mode and the page lifecycle in Chromium, against a real demo server.

Tabs are pages of one browser context (one profile: one pool of HTTP connections, at most six per host). Each page
is the harness at the gateway's origin with `client.shared.js` loaded after `client.js`; the server's connection
count comes from the public connection view (`GET /health` reports `len(gateway.connections)` per hub).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import BrowserContext

from .harness import HARNESS_PATH, Harness, harness_html, wait_until

SERVER_ARGS = ("--job-workers", "12")
"""A demo server of these tests' own (a distinct option set): its connection count is theirs alone."""

HINT = "per-host limit? try {shared: true}"


@pytest.fixture
def server(gateway_server: Callable[..., str]) -> str:
    return gateway_server(extra_args=SERVER_ARGS)


def jobs_connections(base: str) -> int:
    """How many connections the server holds on /hubs/jobs, from its public connection view."""
    with urllib.request.urlopen(f"{base}/health", timeout=5) as reply:
        return int(json.load(reply)["connections"]["jobs"])


def serve_harness(context: BrowserContext, base: str, shared_entry: bool = True) -> None:
    """Every page of `context` at `{base}/__harness` gets the harness, with the shared-mode entry if asked."""
    html = harness_html(base)
    if shared_entry:
        html = html.replace("</head>", f'<script src="{base}/hubs/jobs/client.shared.js"></script>\n</head>')
    context.route(
        re.compile(re.escape(base + HARNESS_PATH) + r"(\?.*)?$"),
        lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html),
    )


def open_tab(context: BrowserContext, base: str) -> Harness:
    page = context.new_page()
    tab = Harness(page, base)
    page.goto(base + HARNESS_PATH)
    tab.wait_loaded(True)
    return tab


@pytest.fixture
def tabs(context: BrowserContext, server: str) -> Iterator[Callable[[int], list[Harness]]]:
    def opener(count: int) -> list[Harness]:
        serve_harness(context, server)
        return [open_tab(context, server) for _ in range(count)]

    yield opener


def run_jobs(tabs: list[Harness], steps: int, step_ms: int) -> list[str]:
    jobs = [tab.start_job(steps, step_ms) for tab in tabs]
    for tab, job in zip(tabs, jobs, strict=True):
        tab.subscribe(job)
    return jobs


def assert_every_step_once(tabs: list[Harness], jobs: list[str], steps: int, timeout: float) -> None:
    for tab, job in zip(tabs, jobs, strict=True):
        tab.wait_finished(job, timeout=timeout)
        sequence = tab.job_sequence(job)  # no gap, no duplicate, in order, to the final state
        assert len(sequence) == steps + 2, sequence


def test_twelve_tabs_over_server_sent_events_share_one_connection(
    tabs: Callable[[int], list[Harness]], server: str
) -> None:
    before = jobs_connections(server)
    pages = tabs(12)
    for tab in pages:
        started = tab.start(transports=["ServerSentEvents"], options={"shared": True})
        assert started == {"transport": "ServerSentEvents", "state": "Connected", "ms": started["ms"]}, started
    assert jobs_connections(server) == before + 1
    ids = {tab.page.evaluate("() => E2E.conn.connectionId") for tab in pages}
    assert len(ids) == 1, ids
    jobs = run_jobs(pages, 20, 50)
    assert_every_step_once(pages, jobs, 20, timeout=30)
    assert jobs_connections(server) == before + 1


START = """(opts) => { E2E.start(opts).catch(() => {}); }"""
"""Starts the page's connection without waiting: a stalled start must not block the test."""


def test_without_shared_mode_the_seventh_tab_stalls_and_its_attempt_record_says_why(
    tabs: Callable[[int], list[Harness]], server: str
) -> None:
    pages = tabs(12)  # every page has loaded the client before any stream holds a connection
    for tab in pages:
        tab.page.evaluate(START, {"transports": ["ServerSentEvents"], "options": {"startTimeout": 3000}})
        tab.page.wait_for_timeout(300)
    pages[-1].page.wait_for_timeout(4000)
    states = [tab.state() for tab in pages]
    summary = [(s["state"], [(a["transport"], a["outcome"], a["reason"]) for a in s["attempts"]]) for s in states]
    assert [s["state"] for s in states[:5]] == ["Connected"] * 5, summary
    # Five streams, and the sixth tab's stream: its handshake POST would need a seventh connection.
    seventh = states[6]
    assert seventh["state"] == "Disconnected" and seventh["startError"], summary
    assert seventh["attempts"] and all(HINT in a["reason"] for a in seventh["attempts"]), summary
    for tab in pages:
        tab.page.close()


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"])
def test_shared_mode_on_each_transport(tabs: Callable[[int], list[Harness]], server: str, transport: str) -> None:
    """ForeverFrame needs a document, so a leader tab hosts it (Web Locks + BroadcastChannel); the others run in
    the SharedWorker."""
    before = jobs_connections(server)
    pages = tabs(3)
    for tab in pages:
        assert tab.start(transports=[transport], options={"shared": True})["transport"] == transport
    assert jobs_connections(server) == before + 1
    jobs = run_jobs(pages, 10, 50)
    assert_every_step_once(pages, jobs, 10, timeout=30)
    for tab in pages:
        tab.stop()
    wait_until(lambda: jobs_connections(server) == before, 10, what="the shared connection to close with its last tab")


TAKEN_OVER = """(old) => E2E.conn.state === 'Connected' && E2E.conn.connectionId === old
    && E2E.events.some((e) => e.type === 'reconnected')"""
"""The tab is connected again, through the same connection, after a reconnect."""


def test_without_shared_worker_the_next_leader_resumes_the_same_connection_when_the_leader_closes(
    context: BrowserContext, server: str
) -> None:
    """The leader tab (the first to take the Web Lock) closes mid-job: another tab adopts the connection the leader
    published and resumes it within 2 s, with the same connection id and no new negotiate; the server replays what
    it sent meanwhile, so every tab sees every step of its job exactly once."""
    context.add_init_script("delete window.SharedWorker")
    serve_harness(context, server)
    pages = [open_tab(context, server) for _ in range(4)]
    for tab in pages:
        assert tab.start(transports=["ServerSentEvents"], options={"shared": True})["state"] == "Connected"
    before = jobs_connections(server)
    jobs = run_jobs(pages[1:], 40, 100)
    pages[0].subscribe(jobs[0])  # the leader holds a job that another tab holds too
    for tab, job in zip(pages[1:], jobs, strict=True):
        tab.wait_progress(job, 3)
    old = pages[0].page.evaluate("() => E2E.conn.connectionId")
    pages[0].page.close()  # the first tab took the lock: it was the leader
    for tab in pages[1:]:
        tab.page.wait_for_function(TAKEN_OVER, arg=old, timeout=2000)
    assert_every_step_once(pages[1:], jobs, 40, timeout=30)
    # The first leader negotiated; the tabs left never did: the next leader resumed (a new stream on the old token).
    assert [r.url for tab in pages[1:] for r in tab.wire.negotiates()] == []
    assert sum(tab.wire.streams()["ServerSentEvents"] for tab in pages[1:]) >= 1
    assert jobs_connections(server) == before
