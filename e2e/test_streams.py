"""Our JS client in Chromium on each forced transport: a server stream (Counter through ``c.stream``), a client
stream (Sum fed by a ``Gateway.Subject``) and a client result (AskClient answered by an ``on`` handler)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .harness import TRANSPORTS, Harness

STREAMS_BOTH_WAYS = """async () => {
  const c = E2E.conn;
  const items = await new Promise((resolve, reject) => {
    const got = [];
    c.stream("Counter", 200, 1).subscribe({next: (x) => got.push(x), complete: () => resolve(got), error: reject});
  });
  const subject = new Gateway.Subject();
  const sum = c.invoke("Sum", subject);
  for (let i = 0; i < 1000; i++) subject.next(i);
  subject.complete();
  c.on("triple", async (x) => x * 3);
  c.on("refuse", () => { throw new Error("not from this page"); });
  const asked = await c.invoke("AskClient", "triple", 14);
  const refused = await c.invoke("AskClient", "refuse", 1).then(() => "answered", (e) => String(e.message || e));
  return {items, sum: await sum, asked, refused};
}"""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_js_client_streams_both_ways_and_answers_client_results(
    open_harness: Callable[..., Harness], gateway: str, transport: str,
) -> None:
    h = open_harness(gateway)
    started = h.start(transports=[transport], hub="/hubs/echo")
    assert started["transport"] == transport, started
    result = h.page.evaluate(STREAMS_BOTH_WAYS)
    assert result["items"] == list(range(200))
    assert result["sum"] == sum(range(1000))
    assert result["asked"] == 42
    assert "not from this page" in result["refused"]
    h.stop()
