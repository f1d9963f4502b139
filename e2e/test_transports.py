"""Our client with each transport forced: a job's progress arrives identical, in content and order, on all four.

Each run is compared field by field (jobId, state, percent, step, message, seq) with the same job received over
WebSockets (the `reference_run` fixture), so the four are equal to each other, not only equally long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import STEP_MS, STEPS
from .harness import TRANSPORTS, Harness


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_forced_transport_delivers_the_same_progress(
    open_harness: Callable[..., Harness],
    gateway: str,
    reference_run: Callable[..., list[dict[str, Any]]],
    transport: str,
) -> None:
    h = open_harness(gateway)
    started = h.start(transports=[transport])
    assert started["transport"] == transport, started
    assert h.trace() == [(transport, "connected")], h.attempts()

    job = h.run_job(STEPS, STEP_MS)
    h.wait_finished(job)
    sequence = h.job_sequence(job)
    assert sequence == reference_run(), f"{transport} delivered other progress than WebSockets did"

    # What went over the wire, seen by the browser rather than reported by the client.
    streams = h.wire.streams()
    assert streams[transport] >= 1, streams
    assert all(count == 0 for name, count in streams.items() if name != transport), streams
    assert len(h.wire.negotiates()) == 1
    h.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_echo_round_trip(open_harness: Callable[..., Harness], gateway: str, transport: str) -> None:
    h = open_harness(gateway)
    h.start(transports=[transport], hub="/hubs/echo")
    payload = {"text": "</script><!-- \u2028 \u2029 & <b>", "n": [1, 2.5, None, True]}
    assert h.page.evaluate("(x) => E2E.conn.invoke('Echo', x)", payload) == payload
    h.page.evaluate("(x) => E2E.conn.invoke('EchoPush', x)", payload)
    h.page.wait_for_function("() => E2E.echoes.length > 0")
    assert h.page.evaluate("() => E2E.echoes") == [payload]
    h.stop()
