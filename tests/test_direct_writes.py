"""An idle stream's output is written by whoever queues it (the deadline timer's ping, a fan-out), without
waking the stream's task; a busy stream is woken as before, and a write that cannot finish at once is left
to the stream, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from serverparts import Parts, Recorder, handshaken, parts

from gateway.backplane import Target
from gateway.backplane.memory import InProcessBackplane
from gateway.protocol import Limits
from gateway.protocol.broadcast import Broadcast
from gateway.protocol.hubjson import PING, encode
from gateway.protocol.messages import Invocation
from gateway.server.connection import ServerConnection
from gateway.transports.base import TransportOptions, claim, pump
from gateway.transports.websockets import WebSocketsTransport

LIMITS = Limits(keepalive_interval=1.0, client_timeout=100.0)


async def attached(p: Parts, write: Any) -> tuple[ServerConnection, asyncio.Future[None], asyncio.Task[None]]:
    """A handshaken connection with a stream whose pump writes with ``write``, parked (nothing to send)."""
    conn = await handshaken(p)
    generation = claim(conn, WebSocketsTransport(TransportOptions(1.0)), resume=False)
    assert generation is not None
    until: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(pump(conn, generation, write, until))
    for _ in range(3):
        await asyncio.sleep(0)
    assert conn.writer is not None
    return conn, until, task


def recording() -> tuple[list[str], Any]:
    """A stream's write that keeps what it was given, and that list."""
    sent: list[str] = []

    async def write(payload: str) -> None:
        sent.append(payload)
    return sent, write


async def test_a_due_ping_is_written_by_the_timer_itself() -> None:
    p = parts(Recorder(), LIMITS)
    sent, write = recording()
    conn, until, task = await attached(p, write)
    p.clock.now = 1.5
    p.deadlines.run(1.5)
    assert sent == [PING]  # already written: no task had a turn
    until.set_result(None)
    await task


async def test_a_fan_out_writes_to_idle_streams_from_the_publisher() -> None:
    p = parts(Recorder(), LIMITS)
    sent: list[list[str]] = [[], []]

    def writer(i: int) -> Any:
        async def write(payload: str) -> None:
            sent[i].append(payload)
        return write

    streams = [await attached(p, writer(i)) for i in range(2)]
    count = p.registry.deliver(Target("all"), Broadcast("news", [1]))
    assert count == 2 and sent[0] == sent[1] and len(sent[0]) == 1
    assert sent[0][0] is sent[1][0]  # one encoding for both
    for _, until, task in streams:
        until.set_result(None)
        await task


async def test_a_backlog_of_fan_outs_in_one_turn_of_the_loop_is_written_together() -> None:
    p = parts(Recorder(), LIMITS)
    sent, write = recording()
    _, until, task = await attached(p, write)
    for i in range(5):  # a listener's backlog: no turn of the loop between the deliveries
        p.registry.deliver(Target("all"), Broadcast("news", [i]), coalesce=True)
    assert len(sent) == 1  # the first is written at once; the stream is woken for the rest
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(sent) == 2 and sent[1].count("news") == 4  # the other four: one write
    p.registry.deliver(Target("all"), Broadcast("news", [5]), coalesce=True)  # the loop has turned: at once again
    assert len(sent) == 3
    until.set_result(None)
    await task


async def test_an_in_process_publisher_sending_in_a_loop_has_each_send_written_at_once() -> None:
    p = parts(Recorder(), LIMITS)
    sent, write = recording()
    _, until, task = await attached(p, write)
    backplane = InProcessBackplane()
    backplane.register("hub", p.registry)
    for i in range(5):  # no turn of the loop between the sends: paced by its writes, as on a raw socket
        await backplane.publish("hub", Target("all"), Broadcast("news", [i]))
        assert len(sent) == i + 1
    until.set_result(None)
    await task


async def test_a_write_that_suspends_is_finished_by_the_stream_in_order() -> None:
    p = parts(Recorder(), LIMITS)
    sent: list[str] = []
    gate = asyncio.Event()

    async def write(payload: str) -> None:
        if not sent:
            await gate.wait()  # the socket is full for the first write
        sent.append(payload)

    conn, until, task = await attached(p, write)
    conn.push(encode(Invocation("first", [])), direct=True)
    assert conn.writer is not None and sent == []
    conn.push(encode(Invocation("second", [])), direct=True)  # a write is in flight: queued, the stream woken
    await asyncio.sleep(0.01)
    assert sent == []
    gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert [record.split('"target":"')[1].split('"')[0] for record in sent] == ["first", "second"]
    until.set_result(None)
    await task


async def test_a_direct_write_that_fails_ends_the_stream_with_its_error() -> None:
    p = parts(Recorder(), LIMITS)

    async def write(payload: str) -> None:
        raise ConnectionResetError("gone")

    conn, until, task = await attached(p, write)
    conn.push(encode(Invocation("news", [])), direct=True)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(task, 1.0)
