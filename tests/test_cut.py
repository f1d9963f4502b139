"""``Gateway.cut``: a server-side drop of a connection's stream, which its client recovers from with no gap."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from live import Live, serve_gateways

from gateway import Gateway
from gateway.client import HubClient
from gateway.demo.hubs import EchoHub

TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with serve_gateways({"/hub": Gateway(EchoHub, name="hub")}) as server:
        yield server


def generation(live: Live, connection_id: str | None) -> int:
    """How many streams the connection has had (a cut and a resume count one each)."""
    assert connection_id is not None
    return int(live.call(lambda: live.gateways["/hub"].registry.by_id[connection_id].core.generation))


def cut(live: Live, connection_id: str | None) -> bool:
    assert connection_id is not None
    return bool(live.call(lambda: live.gateways["/hub"].cut(connection_id)))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_cut_stream_is_resumed_with_no_message_lost_or_repeated(live: Live, transport: str) -> None:
    client = HubClient(live.url("/hub"), transport=transport, stateful_reconnect=True)
    got: list[int] = []
    client.on("echo", got.append)
    await client.start()
    try:
        for i in range(10):
            await client.invoke("EchoPush", i)
        if transport == "LongPolling":  # a poll is held only while the client waits: wait for one
            await asyncio.sleep(0.1)
        before = await asyncio.to_thread(generation, live, client.connection_id)
        assert await asyncio.to_thread(cut, live, client.connection_id)
        for i in range(10, 20):
            await client.invoke("EchoPush", i)
        async with asyncio.timeout(10):
            while len(got) < 20:
                await asyncio.sleep(0.02)
        assert got == list(range(20))
        assert await asyncio.to_thread(generation, live, client.connection_id) >= before + 2  # cut, then resumed
        assert client.transport == transport
    finally:
        await client.close()


async def test_a_connection_without_stateful_reconnect_is_closed_by_a_cut(live: Live) -> None:
    client = HubClient(live.url("/hub"), transport="WebSockets")
    await client.start()
    assert await asyncio.to_thread(cut, live, client.connection_id)
    assert await asyncio.wait_for(client.wait_closed(), 5) is not None
    assert not await asyncio.to_thread(cut, live, client.connection_id)
