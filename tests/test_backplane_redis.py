"""The Redis backplane against a real redis-server: sends reach every process, group membership is
shared, a connection moves between processes exactly, POSTs are forwarded, and an outage degrades
to local delivery and recovers."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gateway import Gateway, Hub
from gateway.backplane.redis import RedisBackplane
from gateway.protocol.hubjson import RS, encode_handshake_request
from gateway.server.connection import ServerConnection

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (scripts/setup.sh)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self) -> None:
        self.port = _port()
        self.dir = tempfile.mkdtemp(prefix="gw-redis-test-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


class RoomHub(Hub):
    async def join(self, room: str) -> None:
        await self.groups.add(self.context.connection_id, room)

    async def slow(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    async def count(self, n: int, seconds: float) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(seconds)
            yield i


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[list[Gateway]]:
    """Two 'processes': two gateways for the same hub, each with its own backplane node."""
    backplanes = [RedisBackplane(redis_server.url, handover_timeout=1.0) for _ in range(2)]
    gateways = [Gateway(RoomHub, name="rooms", backplane=b) for b in backplanes]
    for b in backplanes:
        await b.start()
    yield gateways
    for b in backplanes:
        await b.close()


async def connect(gateway: Gateway, stateful: bool = True, user: str | None = None) -> ServerConnection:
    conn = gateway.create(stateful, user)
    await gateway.backplane.announce(gateway.name, conn.token, conn.id)
    await conn.receive(encode_handshake_request())
    conn.core.take(0)  # the handshake response
    return conn


def invocations(conn: ServerConnection) -> list[Any]:
    """The arguments of every invocation the connection has queued (and marks them sent)."""
    text = conn.core.take(time.monotonic())
    records = [json.loads(r) for r in text.split(RS) if r]
    return [r["arguments"][0] for r in records if r.get("type") == 1]


async def settle(predicate: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_sends_reach_connections_on_every_process(nodes: list[Gateway]) -> None:
    a, b = nodes
    ca, cb = await connect(a, user="ann"), await connect(b, user="ann")
    cb2 = await connect(b, user="bob")
    await a.clients.all.send("m", "all")
    await b.clients.user("ann").send("m", "ann")
    await a.clients.client(cb2.id).send("m", "direct")
    await b.clients.all_except(ca.id).send("m", "not-a")
    await settle(lambda: cb2.core.has_output and ca.core.has_output and cb.core.has_output)
    await asyncio.sleep(0.2)
    assert invocations(ca) == ["all", "ann"]
    assert invocations(cb) == ["all", "ann", "not-a"]
    assert invocations(cb2) == ["all", "direct", "not-a"]


async def test_group_membership_is_shared(nodes: list[Gateway]) -> None:
    a, b = nodes
    ca, cb = await connect(a), await connect(b)
    await a.dispatcher.groups.add(ca.id, "room")  # held here: applied at once
    await a.dispatcher.groups.add(cb.id, "room")  # held by the other process: applied there
    await settle(lambda: "room" in cb.groups)
    for i in range(50):
        await b.clients.group("room").send("m", i)
    await settle(lambda: ca.core.has_output and cb.core.has_output)
    await asyncio.sleep(0.2)
    assert invocations(ca) == list(range(50))
    assert invocations(cb) == list(range(50))
    await b.dispatcher.groups.remove(ca.id, "room")
    await settle(lambda: "room" not in ca.groups)


async def test_a_connection_moves_between_processes_with_nothing_lost_or_doubled(nodes: list[Gateway]) -> None:
    a, b = nodes
    conn = await connect(a)
    await a.dispatcher.groups.add(conn.id, "room")
    received: list[int] = []
    sender_done = asyncio.Event()

    async def sender() -> None:  # sends keep flowing while the connection moves back and forth
        for i in range(300):
            await a.clients.group("room").send("m", i)
            if i % 20 == 0:
                await asyncio.sleep(0)
        sender_done.set()

    task = asyncio.ensure_future(sender())
    holder = a
    for _ in range(6):
        await asyncio.sleep(0.01)
        other = b if holder is a else a
        current = holder.registry.by_id[conn.id]
        received += invocations(current)
        assert await other.backplane.claim(other.name, conn.token)
        assert conn.id not in holder.registry.by_id
        holder = other
    await sender_done.wait()
    await task
    final = holder.registry.by_id[conn.id]
    await asyncio.sleep(0.3)
    received += invocations(final)
    assert received == list(range(300))
    assert final.groups == {"room"}


async def test_what_a_running_invocation_sends_follows_its_connection_to_the_new_holder(nodes: list[Gateway]) -> None:
    a, b = nodes
    conn = await connect(a)
    await conn.receive('{"type":4,"invocationId":"s","target":"Count","arguments":[50,0.02]}' + RS)
    call = '{"type":1,"invocationId":"c","target":"Slow","arguments":[0.3]}' + RS
    reading = asyncio.ensure_future(conn.receive(call))
    await asyncio.sleep(0.1)  # mid-stream, mid-call
    assert await b.backplane.claim(b.name, conn.token)
    await reading  # the reader that waited for the call is free
    moved = b.registry.by_id[conn.id]
    records: list[dict[str, Any]] = []

    def completions() -> dict[str, dict[str, Any]]:
        records.extend(json.loads(r) for r in moved.core.take(time.monotonic()).split(RS) if r)
        return {r["invocationId"]: r for r in records if r.get("type") == 3}

    await settle(lambda: len(completions()) == 2)
    done = completions()
    assert done["c"].get("result") == "done"  # the call's result, sent by the process where it ran
    assert done["s"].get("error") == "The stream ended: its connection moved to another server."
    items = [r["item"] for r in records if r.get("type") == 2]
    assert items == list(range(len(items))) and 0 < len(items) < 50  # each item once, in order, then the end
    assert not a.dispatcher.connections  # nothing of it is left where it was


async def test_a_post_reaching_another_process_is_forwarded_to_the_holder(nodes: list[Gateway]) -> None:
    a, b = nodes
    conn = await connect(a)
    record = '{"type":1,"invocationId":"1","target":"Join","arguments":["r"]}' + RS
    assert await b.backplane.forward(b.name, conn.token, "post", record) == (200, None)
    assert conn.groups == {"r"}
    status, error = await b.backplane.forward(b.name, conn.token, "post", "{not json" + RS) or (0, None)
    assert status == 400 and error and "invalid JSON" in error
    assert await b.backplane.forward(b.name, "no-such-token", "post", record) is None


async def test_an_outage_keeps_local_delivery_and_recovers(nodes: list[Gateway], redis_server: RedisServer) -> None:
    a, b = nodes
    ca, cb = await connect(a), await connect(b)
    redis_server.stop()
    await settle(lambda: not a.backplane.healthy, timeout=8)
    await a.clients.all.send("m", "during")  # reaches a's own connections only: b's miss it
    assert invocations(ca) == ["during"]
    redis_server.start()
    await settle(lambda: a.backplane.healthy and b.backplane.healthy, timeout=8)
    await a.clients.all.send("m", "after")
    await settle(lambda: ca.core.has_output and cb.core.has_output)
    await asyncio.sleep(0.1)
    assert invocations(ca) == ["after"]
    assert invocations(cb) == ["after"]


async def test_a_burst_of_closes_clears_the_directory_and_keeps_the_node_up(nodes: list[Gateway]) -> None:
    a, _ = nodes
    backplane = a.backplane
    assert isinstance(backplane, RedisBackplane)
    conns = [a.create(False, None) for _ in range(3000)]
    await asyncio.gather(*(backplane.announce(a.name, c.token, c.id) for c in conns))
    for conn in conns:
        conn.close(None)  # thousands at once: the directory deletes go out in batches
    redis = backplane._redis

    async def left() -> int:
        return len([key async for key in redis.scan_iter(match=f"{backplane.prefix}:tok:*", count=1000)])

    deadline = time.monotonic() + 10
    while await left():
        assert time.monotonic() < deadline, "directory entries of closed connections stayed in Redis"
        await asyncio.sleep(0.05)
    assert backplane.healthy


async def test_a_worker_process_clients_work_without_an_explicit_start(redis_server: RedisServer) -> None:
    holder = RedisBackplane(redis_server.url)
    gateway = Gateway(RoomHub, name="rooms", backplane=holder)
    await holder.start()
    conn = await connect(gateway)
    worker = RedisBackplane(redis_server.url)
    try:
        await worker.clients("rooms").client(conn.id).send("m", "from a worker")
        await settle(lambda: conn.core.has_output)
        assert invocations(conn) == ["from a worker"]
    finally:
        await worker.close()
        await holder.close()
