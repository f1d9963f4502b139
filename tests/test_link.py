"""``benchmarks.link``: the emulated link delays by its round-trip time, keeps order, counts bytes, and cuts."""

from __future__ import annotations

import asyncio

from benchmarks.link import Link, Profile


async def test_the_link_adds_its_round_trip_keeps_order_and_cuts() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()

    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    link = Link(Profile("test", rtt=0.2, mbit=1), int(upstream.sockets[0].getsockname()[1]))
    await link.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(5):
        writer.write(b"%d," % i)
    got = b""
    while len(got) < 10:
        got += await reader.read(1024)
    assert got == b"0,1,2,3,4,"
    assert loop.time() - started >= 0.2  # half the round trip each way
    assert (link.up.bytes, link.down.bytes) == (10, 10)
    link.cut()
    assert await asyncio.wait_for(reader.read(1024), 2) == b""
    await link.stop()
    upstream.close()
