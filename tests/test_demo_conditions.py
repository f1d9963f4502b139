"""The comparison page's demo endpoints: wire figures, a cut, and the server-side link delay."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live import Live, serve

from gateway.client import HubClient
from gateway.demo.app import create_app


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with serve(create_app(job_workers=1)) as server:
        yield server


async def post(live: Live, path: str, body: Any) -> tuple[int, Any]:
    async with httpx.AsyncClient() as http:
        reply = await http.post(live.url(path), content=json.dumps(body))
        return reply.status_code, reply.json()


async def test_wire_cut_and_delay_for_the_panes_of_the_page(live: Live) -> None:
    client = HubClient(live.url("/hubs/jobs"), transport="WebSockets", stateful_reconnect=True)
    await client.start()
    try:
        assert isinstance(await client.invoke("Now"), float)
        async with httpx.AsyncClient() as http:
            figures = (await http.get(live.url(f"/demo/wire?ids={client.connection_id},nope"))).json()
        assert figures["nope"] is None
        mine = figures[client.connection_id]
        assert mine["transport"] == "WebSockets" and mine["requests"] == 2 and mine["messages_out"] == 1
        assert await post(live, "/demo/delay", {"preset": "Slow 4G"}) == (200, {"ms": 300})
        await client.invoke("Now")  # the stream was open before the delay was set: only new requests are delayed
        assert await post(live, "/demo/cut", {"ids": [client.connection_id]}) == (200, {"cut": [client.connection_id]})
        await asyncio.sleep(0.5)  # the client resumes on a new request, which the delay now holds
        started = time.monotonic()
        await client.invoke("Now")
        assert time.monotonic() - started >= 0.3  # half the round trip each way
    finally:
        assert await post(live, "/demo/delay", {"ms": 0}) == (200, {"ms": 0})
        await client.close()


async def test_bad_bodies_are_400(live: Live) -> None:
    assert (await post(live, "/demo/cut", {"ids": "x"}))[0] == 400
    assert (await post(live, "/demo/cut", {"ids": ["x"] * 9}))[0] == 400
    assert (await post(live, "/demo/delay", {"preset": "dial-up"}))[0] == 400
