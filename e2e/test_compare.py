"""The comparison page under a slow network (Chromium's own emulation, over CDP) and across a server-side cut."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

TRANSPORTS = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]
SLOW_4G = {"offline": False, "latency": 562.5, "downloadThroughput": 1440 * 128, "uploadThroughput": 675 * 128}
"""The page's "Slow 4G" preset (Chromium's): 562.5 ms round trip, 1.44 Mbit/s down, 675 kbit/s up."""


def panes_connected(page: Page) -> None:
    for transport in TRANSPORTS:
        pane = page.locator(f'.pane[data-transport="{transport}"]')
        expect(pane.locator(".state")).to_have_text("Connected", timeout=30_000)
        expect(pane.locator(".transport")).to_have_text(transport)


def run_job(page: Page, steps: int, step_ms: int) -> None:
    page.fill("#steps", str(steps))
    page.fill("#step_ms", str(step_ms))
    page.click("#start")


def test_slow_4g_shows_first_message_times_bytes_per_message_and_the_verdict(page: Page, gateway: str) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    page.goto(f"{gateway}/compare?preset=Slow%204G&emulated=1")
    panes_connected(page)
    expect(page.locator("#preset")).to_have_value("Slow 4G")
    firsts = {}
    for transport in TRANSPORTS:
        first = page.locator(f'.pane[data-transport="{transport}"] .first')
        expect(first).to_have_text(re.compile(r"^\d+\.\d ms$"), timeout=30_000)
        firsts[transport] = float(first.inner_text().split()[0])
    assert all(ms >= 562 for ms in firsts.values()), firsts  # a round trip at least: the emulation is on
    run_job(page, 8, 150)
    page.wait_for_function("window.compareVerdict", timeout=60_000)
    assert page.evaluate("window.compareVerdict") == "same"
    expect(page.locator("#verdict")).to_contain_text("All four saw the same 10 messages")
    for transport in TRANSPORTS:
        pane = page.locator(f'.pane[data-transport="{transport}"]')
        expect(pane.locator(".bpm")).to_have_text(re.compile(r"^↓ \d+ B ↑ \d+ B$"))
        expect(pane.locator(".rpm")).to_have_text(re.compile(r"^\d+\.\d\d$"))
    costs = page.evaluate("window.compare.panes.map((p) => [p.name, p.wire.down, p.wire.up, p.wire.requests])")
    by_name = {name: (down, up, requests) for name, down, up, requests in costs}
    assert by_name["WebSockets"][2] == 0  # no HTTP request per message on a WebSocket
    assert by_name["LongPolling"][1] > by_name["WebSockets"][1]  # each poll's request goes up


def test_the_cut_button_makes_every_pane_recover_with_no_gap(page: Page, gateway: str) -> None:
    page.goto(f"{gateway}/compare")
    panes_connected(page)
    run_job(page, 30, 100)
    page.wait_for_function("window.compare.panes.every((p) => p.events.length >= 5)", timeout=15_000)
    page.click("#cut")
    page.wait_for_function("window.compareVerdict", timeout=30_000)
    assert page.evaluate("window.compareVerdict") == "same"
    expect(page.locator("#verdict")).to_contain_text("All four saw the same 32 messages")
    recoveries = page.evaluate("window.compare.panes.map((p) => [p.name, p.reconnects, p.recoveries, p.gaps])")
    for name, reconnects, times, gaps in recoveries:
        assert reconnects == 1 and len(times) == 1 and gaps == 0, (name, reconnects, times, gaps)
        expect(page.locator(f'.pane[data-transport="{name}"] .recovery')).to_have_text(re.compile(r"^\d+ ms$"))
