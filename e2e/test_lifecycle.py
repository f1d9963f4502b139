"""The page lifecycle in Chromium, against a real demo server: the back/forward cache, a freeze through the DevTools
protocol, offline and online, and a WebSocket that a relay keeps open but no longer forwards. Each time the page
must catch up on its job with no gap and no duplicate, by resuming the connection the server still holds."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright

from .conftest import CHROMIUM_ARGS, chromium_candidates
from .harness import HARNESS_PATH, Harness, harness_html
from .servers import CuttableRelay
from .test_drops import assert_resumed_without_loss

STEPS = 30
STEP_MS = 100


@pytest.fixture(scope="module")
def bfcache_browser(playwright_session: Playwright) -> Iterator[Browser]:
    """A Chromium with its back/forward cache on (Playwright turns it off by default)."""
    executable = chromium_candidates(playwright_session)[0]
    browser = playwright_session.chromium.launch(
        executable_path=executable, args=CHROMIUM_ARGS, headless=True,
        ignore_default_args=["--disable-back-forward-cache"],
    )
    yield browser
    browser.close()


def harness_in(context: BrowserContext, base: str) -> Harness:
    html = harness_html(base)
    context.route(
        re.compile(re.escape(base + HARNESS_PATH) + r"(\?.*)?$"),
        lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html),
    )
    page = context.new_page()
    h = Harness(page, base)
    page.goto(base + HARNESS_PATH)
    h.wait_loaded(True)
    return h


def connection_id(h: Harness) -> str:
    return str(h.page.evaluate("() => E2E.conn.connectionId"))


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "LongPolling"])
def test_back_forward_cache_catches_up_without_gap_or_duplicate(
    bfcache_browser: Browser, gateway: str, reference_run: Callable[..., list[dict[str, Any]]], transport: str
) -> None:
    context = bfcache_browser.new_context()
    try:
        h = harness_in(context, gateway)
        h.page.evaluate("() => { E2E.shows = []; addEventListener('pageshow', (e) => E2E.shows.push(e.persisted)); }")
        assert h.start(transports=[transport])["transport"] == transport
        before = connection_id(h)
        job = h.run_job(STEPS, STEP_MS)
        h.wait_progress(job, 3)
        h.page.goto(gateway + "/compare")
        h.page.wait_for_timeout(800)  # the job goes on meanwhile
        h.page.go_back(wait_until="commit")
        h.page.wait_for_function("() => window.E2E && E2E.shows.length")
        assert h.page.evaluate("() => E2E.shows") == [True], "the page was not restored from the back/forward cache"
        assert_resumed_without_loss(h, job, reference_run(STEPS, STEP_MS))
        assert connection_id(h) == before
    finally:
        context.close()


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"])
def test_a_frozen_page_resumes_when_it_wakes(
    context: BrowserContext, gateway: str, reference_run: Callable[..., list[dict[str, Any]]], transport: str
) -> None:
    h = harness_in(context, gateway)
    assert h.start(transports=[transport])["transport"] == transport
    before = connection_id(h)
    job = h.run_job(STEPS, STEP_MS)
    h.wait_progress(job, 3)
    cdp = context.new_cdp_session(h.page)
    cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
    time.sleep(1.0)
    cdp.send("Page.setWebLifecycleState", {"state": "active"})
    # Headless Chromium 156 accepts the two calls above but neither freezes the page nor fires its events (timers
    # keep running), so the event it fires on unfreezing is fired here, at the document, as Chromium does.
    h.page.evaluate("() => document.dispatchEvent(new Event('resume'))")
    assert_resumed_without_loss(h, job, reference_run(STEPS, STEP_MS))
    assert connection_id(h) == before


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"])
def test_offline_then_online_resumes_the_same_connection(
    context: BrowserContext, gateway: str, reference_run: Callable[..., list[dict[str, Any]]], transport: str
) -> None:
    h = harness_in(context, gateway)
    assert h.start(transports=[transport])["transport"] == transport
    before = connection_id(h)
    job = h.run_job(STEPS, STEP_MS)
    h.wait_progress(job, 3)
    context.set_offline(True)
    time.sleep(1.0)
    context.set_offline(False)
    assert_resumed_without_loss(h, job, reference_run(STEPS, STEP_MS))
    assert connection_id(h) == before


@pytest.fixture
def pinging_relay(gateway_server: Callable[..., str]) -> Iterator[CuttableRelay]:
    """A relay in front of a server that pings every second (so a client may use a short server timeout)."""
    base = gateway_server(extra_args=("--set", "keepalive_interval=1"))
    relay = CuttableRelay(int(base.rsplit(":", 1)[1]))
    yield relay
    relay.stop()


def test_a_websocket_that_carries_nothing_is_resumed_within_the_server_timeout(
    context: BrowserContext, pinging_relay: CuttableRelay, reference_run: Callable[..., list[dict[str, Any]]]
) -> None:
    timeout_ms = 3000
    h = harness_in(context, pinging_relay.origin)
    assert h.start(transports=["WebSockets"], options={"serverTimeout": timeout_ms})["transport"] == "WebSockets"
    before = connection_id(h)
    job = h.run_job(STEPS, STEP_MS)
    h.wait_progress(job, 3)
    h.page.evaluate("""() => {
      E2E.conn.onreconnecting(() => { E2E.dropAt ??= performance.now(); });
      E2E.conn.onreconnected(() => { E2E.backAt ??= performance.now(); });
    }""")
    stalled_at = h.page.evaluate("() => performance.now()")
    assert pinging_relay.stall() >= 1
    assert_resumed_without_loss(h, job, reference_run(STEPS, STEP_MS))
    assert connection_id(h) == before
    drop = next(e for e in h.events() if e["type"] == "reconnecting")
    assert drop["error"] == f"server timeout: nothing received for {timeout_ms} ms", h.events()
    drop_at, back_at = h.page.evaluate("() => [E2E.dropAt, E2E.backAt]")
    # Dropped once the server timeout passed with nothing heard (up to one server ping period after the stall),
    # then resumed at once.
    assert timeout_ms - 1100 <= drop_at - stalled_at <= timeout_ms + 500, (stalled_at, drop_at, back_at)
    assert back_at - drop_at <= 2000, (drop_at, back_at)
