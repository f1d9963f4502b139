"""The admin page (``/admin`` in the demo): a page's connection appears live on the right transport, and the
page's disconnect button ends it."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, expect

TRANSPORTS = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_admin_page_shows_a_connection_live_and_disconnects_it(
    context: BrowserContext, gateway: str, transport: str,
) -> None:
    admin = context.new_page()
    admin.goto(f"{gateway}/admin/")
    expect(admin.locator("#conn")).to_have_text("Connected")
    watched = context.new_page()
    watched.goto(f"{gateway}/?transport={transport}")
    expect(watched.locator("#conn")).to_have_text("Connected")
    connection_id = watched.evaluate("demo.conn.connectionId")
    row = admin.locator(f'table[data-hub="jobs"] tr[data-id="{connection_id}"]')
    expect(row).to_have_attribute("data-transport", transport, timeout=5_000)  # pushed, not reloaded
    expect(admin.locator(f'b[data-hub="jobs"][data-count="{transport}"]')).not_to_have_text("0")
    row.locator("button.disconnect").click()
    expect(row).to_have_count(0, timeout=5_000)
    expect(watched.locator("#conn")).to_have_text("Disconnected", timeout=10_000)
    admin.close()
    watched.close()


def test_an_action_on_an_unknown_hub_answers_an_error(context: BrowserContext, gateway: str) -> None:
    admin = context.new_page()
    admin.goto(f"{gateway}/admin/")
    expect(admin.locator("#conn")).to_have_text("Connected")
    error = admin.evaluate("""async () => {
        const c = new Gateway.HubConnection("/admin/hub"); await c.start();
        try { await c.invoke("Disconnect", "nope", "x"); return null; } catch (e) { return e.message; }
        finally { await c.stop(); }
    }""")
    assert "no hub named 'nope'" in error
    admin.close()
