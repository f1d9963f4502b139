"""server/deadlines.py: the heap wakes each connection at its deadline; a closed one is dropped from it."""

from __future__ import annotations

from serverparts import Recorder, handshaken, parts

from gateway.protocol import Limits


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
