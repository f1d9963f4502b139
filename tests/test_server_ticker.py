"""server/ticker.py: a tick closes the connections whose deadlines passed and wakes those with output."""

from __future__ import annotations

from serverparts import Recorder, handshaken, parts

from gateway.protocol import Limits
from gateway.server.ticker import Ticker


async def test_a_tick_closes_a_connection_past_its_deadline_and_forgets_the_closed_after_a_while() -> None:
    p = parts(Recorder(), Limits(handshake_timeout=2.0))
    silent = p.lifecycle.create(False, None)
    talking = await handshaken(p)
    ticker = Ticker(p.registry, p.closed, p.clock, 1.0)
    ticker.tick(1.0)
    assert silent.id in p.registry.by_id
    ticker.tick(2.5)
    assert silent.id not in p.registry.by_id and talking.id in p.registry.by_id
    p.clock.now = 3.0
    talking.close("bye")
    assert len(p.closed) == 1  # its Close message waits for a poll
    ticker.tick(3.0 + p.closed.linger - 0.1)
    assert len(p.closed) == 1
    ticker.tick(3.0 + p.closed.linger)
    assert len(p.closed) == 0


async def test_start_runs_one_loop_and_stop_ends_it() -> None:
    p = parts(Recorder())
    ticker = Ticker(p.registry, p.closed, p.clock, 60.0)
    assert ticker.start() and not ticker.start()
    await ticker.stop()
    assert ticker.start()
    await ticker.stop()
