"""Interoperability of the MessagePack hub protocol with clients nobody here wrote: the official @microsoft/signalr
with @microsoft/signalr-protocol-msgpack (npm, pinned in package.json), in Chromium, on WebSockets and LongPolling.

Echo answers binary arguments as binary (a Uint8Array comes back as one, which JSON could not do) and timestamps as
Dates, EchoPush calls back, and the client logs no warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from .harness import Harness

DIST = Path(__file__).resolve().parent / "node_modules/@microsoft"
SIGNALR_JS = DIST / "signalr/dist/browser/signalr.js"
MSGPACK_JS = DIST / "signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.js"

HELPERS = r"""
(() => {
  window.MP = {
    log: [],
    async echo(transport, payload) {
      const logger = { log: (level, message) => {
        if (level >= signalR.LogLevel.Warning) MP.log.push(signalR.LogLevel[level] + ": " + message);
      }};
      const c = new signalR.HubConnectionBuilder()
        .withUrl(E2E.base + "/hubs/echo", {transport: signalR.HttpTransportType[transport]})
        .withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol())
        .configureLogging(logger)
        .build();
      const pushed = [];
      c.on("echo", (x) => { pushed.push(x); });
      await c.start();
      const answer = await c.invoke("Echo", payload);
      const bytes = await c.invoke("Echo", new Uint8Array([0, 1, 2, 127, 128, 255]));
      const date = await c.invoke("Echo", new Date(Date.UTC(2024, 4, 6, 7, 8, 9, 123)));
      await c.invoke("EchoPush", payload);
      for (let i = 0; i < 100 && pushed.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await c.stop();
      return {
        answer, pushed,
        bytes: {isBinary: bytes instanceof Uint8Array, values: Array.from(bytes)},
        date: date instanceof Date ? date.toISOString() : String(date),
      };
    },
  };
})();
"""


@pytest.fixture
def msgpack_page(page: Page, gateway: str) -> Iterator[Harness]:
    for path in (SIGNALR_JS, MSGPACK_JS):
        assert path.exists(), f"{path} is missing: run npm ci in e2e/"
    h = Harness.at_gateway(page, gateway, load_client=False)
    page.add_script_tag(path=str(SIGNALR_JS))
    page.add_script_tag(path=str(MSGPACK_JS))
    assert page.evaluate("() => typeof signalR.protocols.msgpack.MessagePackHubProtocol") == "function"
    page.evaluate(HELPERS)
    yield h


@pytest.mark.parametrize("transport", ["WebSockets", "LongPolling"])
def test_official_client_with_messagepack(msgpack_page: Harness, transport: str) -> None:
    h = msgpack_page
    payload = {"text": "hé", "list": [1, "two", None, 2.5, -7], "nested": {"ok": True}}
    result = h.page.evaluate("([t, p]) => MP.echo(t, p)", [transport, payload])
    assert result["answer"] == payload
    assert result["pushed"] == [payload]
    assert result["bytes"] == {"isBinary": True, "values": [0, 1, 2, 127, 128, 255]}
    assert result["date"] == "2024-05-06T07:08:09.123Z"
    streams = h.wire.streams("/hubs/echo")
    assert streams[transport] >= 1 and all(n == 0 for name, n in streams.items() if name != transport), streams
    assert h.page.evaluate("() => MP.log") == [], "the official client logged warnings or errors"
