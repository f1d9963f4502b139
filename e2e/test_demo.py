"""The demo, driven as a user would: the job page on every transport, failure, late subscribers,
the comparison page's verdict (its screenshot goes in the README), and chat across transports."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

TRANSPORTS = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "compare.png"
# The job page shows the job in a <gateway-job> element; Playwright's CSS selectors pierce its shadow root.
STATE, PERCENT, ERROR, LOG = (f"gateway-job [part={p}]" for p in ("state", "percent", "error", "log"))


def post_job(base: str, **body: int) -> str:
    request = urllib.request.Request(f"{base}/jobs", json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202
        assert response.headers["Location"].startswith("/jobs/")
        return str(json.load(response)["id"])


def job_state(base: str, job_id: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/jobs/{job_id}", timeout=5) as response:
        return dict(json.load(response))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_job_page_goes_through_every_state(page: Page, gateway: str, transport: str) -> None:
    page.goto(f"{gateway}/?transport={transport}")
    expect(page.locator("#conn")).to_have_text("Connected")
    expect(page.locator("#transport")).to_have_text(transport)
    page.fill("#steps", "6")
    page.fill("#step_ms", "60")
    page.click("#start")
    expect(page.locator(STATE)).to_have_text("Completed", timeout=10_000)
    expect(page.locator(PERCENT)).to_have_text("100%")
    lines = page.locator(f"{LOG} li").all_inner_texts()
    states = [line.split()[1] for line in lines]
    assert states == ["Pending"] + ["Processing"] * 6 + ["Completed"], lines
    assert [line.split()[0] for line in lines] == [f"#{i}" for i in range(1, 9)]
    assert page.locator("#trace li").count() == 1  # forced: one attempt, and it connected


def test_failing_job_shows_failed_and_its_reason(page: Page, gateway: str) -> None:
    page.goto(f"{gateway}/")
    expect(page.locator("#conn")).to_have_text("Connected")
    page.fill("#steps", "5")
    page.fill("#step_ms", "40")
    page.fill("#fail_at", "3")
    page.click("#start")
    expect(page.locator(STATE)).to_have_text("Failed", timeout=10_000)
    expect(page.locator(ERROR)).to_contain_text("Step 3 failed")


def test_subscribing_after_completion_shows_100_at_once(page: Page, gateway: str) -> None:
    job_id = post_job(gateway, steps=3, step_ms=10)
    deadline = time.monotonic() + 10
    while job_state(gateway, job_id)["state"] != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    page.goto(f"{gateway}/?job={job_id}&transport=LongPolling")
    expect(page.locator(PERCENT)).to_have_text("100%", timeout=5_000)
    expect(page.locator(STATE)).to_have_text("Completed")
    assert page.locator(f"{LOG} li").count() == 5  # the whole step log, once each


def test_compare_page_reaches_the_same_sequence_verdict(page: Page, gateway: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 860})
    page.goto(f"{gateway}/compare")
    page.add_style_tag(content="* { transition: none !important; }")  # the screenshot shows final bars
    for transport in TRANSPORTS:
        pane = page.locator(f'.pane[data-transport="{transport}"]')
        expect(pane.locator(".state")).to_have_text("Connected")
        expect(pane.locator(".transport")).to_have_text(transport)
    page.fill("#steps", "20")
    page.fill("#step_ms", "60")
    page.click("#start")
    page.wait_for_function("window.compareVerdict", timeout=15_000)
    assert page.evaluate("window.compareVerdict") == "same"
    expect(page.locator("#verdict")).to_contain_text("All four saw the same 22 messages")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))


def test_two_pages_on_different_transports_chat(browser: Browser, gateway: str) -> None:
    room = "e2e-" + uuid.uuid4().hex[:8]
    a_ctx, b_ctx = browser.new_context(), browser.new_context()
    try:
        a, b = a_ctx.new_page(), b_ctx.new_page()
        a.goto(f"{gateway}/chat?transport=WebSockets&room={room}&name=alice")
        b.goto(f"{gateway}/chat?transport=LongPolling&room={room}&name=bob")
        expect(a.locator("#transport")).to_have_text("WebSockets")
        expect(b.locator("#transport")).to_have_text("LongPolling")
        a.wait_for_function("window.chat && window.chat.conn.state === 'Connected'")
        b.wait_for_function("window.chat && window.chat.conn.state === 'Connected'")
        a.fill("#text", "hello from a WebSocket")
        a.press("#text", "Enter")
        expect(b.locator("#messages")).to_contain_text("alice: hello from a WebSocket")
        b.fill("#text", "hi back over long polling")
        b.press("#text", "Enter")
        expect(a.locator("#messages")).to_contain_text("bob: hi back over long polling")
        late = b_ctx.new_page()
        late.goto(f"{gateway}/chat?transport=ServerSentEvents&room={room}&name=carol")
        expect(late.locator("#messages")).to_contain_text("alice: hello from a WebSocket")  # history
    finally:
        a_ctx.close()
        b_ctx.close()
