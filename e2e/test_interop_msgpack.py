"""Interoperability of the MessagePack hub protocol with clients nobody here wrote: the official @microsoft/signalr
with @microsoft/signalr-protocol-msgpack (npm, pinned in package.json), in Chromium, on WebSockets and LongPolling.

Echo answers binary arguments as binary (a Uint8Array comes back as one, which JSON could not do) and timestamps as
Dates, EchoPush calls back, and the client logs no warning. The official client's streams and client results work
too, with MessagePack on WebSockets and LongPolling and with JSON on ServerSentEvents: ``connection.stream`` over
``Counter``, a ``signalR.Subject`` streamed to ``Sum``, and an ``on`` handler returning the answer to ``AskClient``.
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
    build(transport, protocol) {
      const logger = { log: (level, message) => {
        if (level >= signalR.LogLevel.Warning) MP.log.push(signalR.LogLevel[level] + ": " + message);
      }};
      let b = new signalR.HubConnectionBuilder()
        .withUrl(E2E.base + "/hubs/echo", {transport: signalR.HttpTransportType[transport]})
        .configureLogging(logger);
      if (protocol === "messagepack") b = b.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol());
      return b.build();
    },
    counter(c, count, delayMs) {
      return new Promise((resolve, reject) => {
        const items = [];
        c.stream("Counter", count, delayMs).subscribe({
          next: (x) => items.push(x), complete: () => resolve(items), error: reject,
        });
      });
    },
    async streams(transport, protocol) {
      const c = MP.build(transport, protocol);
      c.on("double", (x) => x * 2);
      c.on("later", (x) => new Promise((r) => setTimeout(() => r("later " + x), 20)));
      await c.start();
      const counted = await MP.counter(c, 1000, 0);
      const subject = new signalR.Subject();
      const summed = c.invoke("Sum", subject);
      for (let i = 0; i < 1000; i++) subject.next(i);
      subject.complete();
      const sum = await summed;
      const asked = await c.invoke("AskClient", "double", 21);
      const askedLater = await c.invoke("AskClient", "later", "x");
      const cancelled = await new Promise((resolve, reject) => {
        const seen = [];
        const sub = c.stream("Counter", 10000, 10).subscribe({
          next: (x) => { seen.push(x); if (seen.length === 3) { sub.dispose(); resolve(seen); } },
          complete: () => reject(new Error("the stream completed")), error: reject,
        });
      });
      const after = await c.invoke("Echo", "after");
      await c.stop();
      return {
        count: counted.length, inOrder: counted.every((x, i) => x === i), sum, asked, askedLater, cancelled, after,
      };
    },
    async echo(transport, payload) {
      const c = MP.build(transport, "messagepack");
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


STREAM_CASES = [("WebSockets", "messagepack"), ("LongPolling", "messagepack"), ("ServerSentEvents", "json")]


@pytest.mark.parametrize(("transport", "protocol"), STREAM_CASES, ids=[f"{p}-{t}" for t, p in STREAM_CASES])
def test_official_client_streams_both_ways_and_answers_client_results(
    msgpack_page: Harness, transport: str, protocol: str,
) -> None:
    h = msgpack_page
    result = h.page.evaluate("([t, p]) => MP.streams(t, p)", [transport, protocol])
    assert result == {
        "count": 1000, "inOrder": True, "sum": sum(range(1000)), "asked": 42, "askedLater": "later x",
        "cancelled": [0, 1, 2], "after": "after",
    }
    streams = h.wire.streams("/hubs/echo")
    assert streams[transport] >= 1 and all(n == 0 for name, n in streams.items() if name != transport), streams
    assert h.page.evaluate("() => MP.log") == [], "the official client logged warnings or errors"
