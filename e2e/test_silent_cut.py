"""A ForeverFrame cut that only the server sees, in Chromium: the iframe stays "loading" and fires nothing.

The page talks to the demo server through a relay that, mid-job, closes the frame's server side and forwards nothing
more to the browser (`SilentCutRelay.silent_cut`), as a forward proxy cutting an idle response may. The server
detaches the connection at once; the page learns of it from the answer to its next keep-alive POST, resumes the same
connection, and the progress sent meanwhile arrives, all of it, once, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .harness import Harness
from .servers import SilentCutRelay
from .test_drops import assert_resumed_without_loss

STEPS = 40
STEP_MS = 150
OPTIONS = {"keepAliveInterval": 4000, "ackDelay": 60_000}
"""The page POSTs nothing but a keep-alive 4 s after its last send (no acks meanwhile): the cut goes unnoticed
for a few seconds while the job publishes."""

WATCH_FRAME = """() => {
  const frame = document.querySelector('iframe');
  const doc = frame.contentDocument;
  E2E.frameStates = [];
  const timer = setInterval(() => frame.isConnected ? E2E.frameStates.push(doc.readyState) : clearInterval(timer), 100);
}"""
"""Samples the frame's readyState every 0.1 s for as long as the frame is in the page."""


@pytest.fixture
def silent_relay(gateway: str) -> Iterator[SilentCutRelay]:
    relay = SilentCutRelay(int(gateway.rsplit(":", 1)[1]))
    yield relay
    relay.stop()


def test_a_frame_cut_silently_resumes_the_same_connection_without_loss(
    open_harness: Callable[..., Harness],
    silent_relay: SilentCutRelay,
    reference_run: Callable[..., list[dict[str, Any]]],
) -> None:
    h = open_harness(silent_relay.origin)
    started = h.start(transports=["ForeverFrame"], options=OPTIONS)
    assert started["transport"] == "ForeverFrame", started
    connection_id = h.page.evaluate("() => E2E.conn.connectionId")
    job = h.run_job(STEPS, STEP_MS)
    h.wait_progress(job, 5)

    h.page.evaluate(WATCH_FRAME)
    cut_at = h.page.evaluate("() => performance.now()")
    assert silent_relay.silent_cut(b"transport=ForeverFrame") == 1
    h.page.wait_for_timeout(1000)
    seen_at_cut = len(h.progress(job))
    assert seen_at_cut < STEPS, "the job ended before the cut: the test proves nothing"
    # A second on, the page has noticed nothing: no event, and the frame is still loading.
    assert h.events() == [] and h.page.evaluate("() => E2E.frameStates.at(-1)") == "loading", h.state()

    assert_resumed_without_loss(h, job, reference_run(STEPS, STEP_MS))
    assert h.page.evaluate("() => E2E.conn.connectionId") == connection_id, "a new connection, not a resume"
    assert h.transport() == "ForeverFrame"
    resumes = [a for a in h.attempts() if a["resume"]]
    assert [(a["transport"], a["outcome"]) for a in resumes] == [("ForeverFrame", "connected")], h.attempts()
    # The frame never ended (its document was still loading when the client gave it up): the answer to a POST
    # told the page, and progress was published while it heard nothing.
    states = h.page.evaluate("() => E2E.frameStates")
    assert set(states) == {"loading"} and len(states) >= 10, states
    drops = [e for e in h.events() if e["type"] == "reconnecting"]
    assert [e["error"] for e in drops] == ["no stream at the server"], h.events()
    assert h.page.evaluate("(t) => performance.now() - t", cut_at) > 2 * STEP_MS
    h.stop()
