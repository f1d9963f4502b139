"""server/deadlines.py: the heap wakes each connection at its deadline (on a grid of one step: one wake-up for
every deadline of a step); a closed one is dropped from it."""

from __future__ import annotations

import asyncio

import pytest
from serverparts import Recorder, handshaken, parts

from gateway.backplane import InProcessBackplane
from gateway.protocol import Limits
from gateway.server.deadlines import GRAIN, Deadlines, grain
from gateway.server.lifecycle import Lifecycle
from gateway.server.limits import PendingLimiter
from gateway.server.lookup import Closed
from gateway.server.registry import Registry


async def test_a_run_closes_a_connection_past_its_deadline_and_keeps_the_others() -> None:
    p = parts(Recorder(), Limits(handshake_timeout=2.0))
    silent = p.lifecycle.create(False, None)
    talking = await handshaken(p)
    p.deadlines.run(1.0)
    assert silent.id in p.registry.by_id
    p.deadlines.run(2.5)
    assert silent.id not in p.registry.by_id and talking.id in p.registry.by_id
    talking.close("bye")
    assert len(p.closed) == 1 and len(p.deadlines) == 1  # its Close message waits for a poll


async def test_a_closed_connection_leaves_the_heap() -> None:
    p = parts(Recorder())
    conns = [p.lifecycle.create(False, None) for _ in range(100)]
    assert len(p.deadlines) == 100
    for conn in conns:
        conn.close("bye")
    assert len(p.deadlines) < 100  # rebuilt once stale entries were half of it
    p.deadlines.stop()


class CountingDeadlines(Deadlines):
    """Deadlines that count the timer's runs."""

    runs = 0

    def run(self, now: float) -> None:
        self.runs += 1
        super().run(now)


async def test_one_timer_wake_serves_every_deadline_of_its_step() -> None:
    """Twenty handshake deadlines spread over 0.2 s: the timer wakes on a grid of 0.25 s, not twenty times."""
    loop = asyncio.get_running_loop()
    deadlines = CountingDeadlines(loop.time, 0.25)
    registry = Registry()
    lifecycle = Lifecycle("hub", registry, InProcessBackplane(), Recorder(), Closed(5.0),
                          limits=Limits(handshake_timeout=0.3), clock=loop.time, deadlines=deadlines,
                          pending=PendingLimiter())
    for _ in range(20):
        lifecycle.create(False, None)
        await asyncio.sleep(0.01)
    for _ in range(200):
        if not len(registry):
            break
        await asyncio.sleep(0.01)
    assert len(registry) == 0  # every one timed out
    assert deadlines.runs <= 3, f"{deadlines.runs} wake-ups for 20 deadlines within one step or two"
    deadlines.stop()


def test_the_step_scales_with_the_shortest_lifetime() -> None:
    assert grain(15.0, 30.0, 15.0, 45.0) == GRAIN == 1.0
    assert grain(0.3, 30.0) == pytest.approx(0.02)
