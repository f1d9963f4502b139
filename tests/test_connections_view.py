"""``gateway.connections``: counts by transport and a per-connection snapshot, live on every transport."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest
from live import Live, negotiate, serve_gateways

from gateway import ConnectionInfo, Gateway
from gateway.client import HubClient
from gateway.demo.hubs import EchoHub
from gateway.server.asgi import Request
from gateway.server.wire import WireCounts

TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")


async def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value if scheme.lower() == "bearer" and value else None


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with serve_gateways({"/hub": Gateway(EchoHub, name="hub", authenticate=bearer)}) as server:
        yield server


def gateway(live: Live) -> Gateway:
    return live.gateways["/hub"]


async def info(live: Live, connection_id: str | None) -> ConnectionInfo:
    """The connection's snapshot, taken on the server's loop."""
    assert connection_id is not None
    found = await asyncio.to_thread(live.call, lambda: gateway(live).connections.get(connection_id))
    assert isinstance(found, ConnectionInfo)
    return found


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_snapshot_shows_transport_user_groups_age_and_traffic(live: Live, transport: str) -> None:
    client = HubClient(live.url("/hub"), transport=transport, headers={"Authorization": "Bearer alice"})
    pushed: asyncio.Queue[object] = asyncio.Queue()
    client.on("echo", pushed.put_nowait)
    await client.start()
    try:
        await client.invoke("Join", "room-1")
        await client.invoke("EchoPush", "x")
        await asyncio.wait_for(pushed.get(), 5)
        before = await info(live, client.connection_id)
        assert (before.id, before.transport, before.user) == (client.connection_id, transport, "alice")
        assert before.groups == frozenset({"room-1"}) and before.age > 0
        # in: handshake, Join, EchoPush; out: handshake response, two completions, the push
        assert (before.messages_in, before.messages_out) == (3, 4)
        assert await client.invoke("Echo", "é" * 1000) == "é" * 1000
        after = await info(live, client.connection_id)
        assert (after.messages_in - before.messages_in, after.messages_out - before.messages_out) == (1, 1)
        assert after.bytes_in - before.bytes_in > 2000 and after.bytes_out - before.bytes_out > 2000  # UTF-8 bytes
        assert after.age > before.age
    finally:
        await client.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_counts_by_transport_follow_connections_in_and_out(live: Live, transport: str) -> None:
    def counts() -> dict[str, int]:
        return dict(live.call(lambda: gateway(live).connections.counts().by_transport))

    start = await asyncio.to_thread(counts)
    assert set(start) == set(TRANSPORTS)
    client = HubClient(live.url("/hub"), transport=transport)
    await client.start()
    during = await asyncio.to_thread(counts)
    assert during == {**start, transport: start[transport] + 1}
    await client.close()
    for _ in range(100):  # the server sees the close a moment later
        if await asyncio.to_thread(counts) == start:
            break
        await asyncio.sleep(0.02)
    assert await asyncio.to_thread(counts) == start


def test_a_connection_without_a_stream_yet_is_pending(live: Live) -> None:
    before = live.call(lambda: gateway(live).connections.counts())
    negotiate(live.port, "/hub")
    after = live.call(lambda: gateway(live).connections.counts())
    assert (after.pending, after.total) == (before.pending + 1, before.total + 1)
    assert after.by_transport == before.by_transport


def test_the_view_is_frozen_and_holds_no_connection_object(live: Live) -> None:
    token = negotiate(live.port, "/hub")["connectionId"]
    snapshot = live.call(lambda: gateway(live).connections.snapshot())
    mine = next(i for i in snapshot if i.id == token)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.user = "mallory"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.wire.bytes_in = 0  # type: ignore[misc]
    plain = str | int | float | frozenset | WireCounts | None
    assert all(isinstance(getattr(mine, f.name), plain) for f in dataclasses.fields(mine))
