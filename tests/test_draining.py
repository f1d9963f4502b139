"""Draining by API call: /ready turns 503, negotiates and streams are refused; with no other process to take
the connections (the in-process backplane), they are closed with a Close message that allows reconnecting."""

from __future__ import annotations

import asyncio

import httpx
from live import serve

from gateway.client import HubClient
from gateway.demo.app import create_app


async def test_a_drain_refuses_new_work_and_reports_not_ready() -> None:
    app = create_app(job_workers=0, metrics=False)
    with serve(app) as live:
        client = HubClient(live.url("/hubs/echo"), transport="WebSockets", stateful_reconnect=True)
        await client.start()
        ready = await asyncio.to_thread(httpx.get, live.url("/ready"))
        assert ready.status_code == 200
        echo = app.state.gateways[1]
        left = await asyncio.to_thread(live.call, lambda: echo.drain(1.0))
        assert left == 0
        assert await asyncio.wait_for(client.wait_closed(), 5) == "server shutting down"
        ready = await asyncio.to_thread(httpx.get, live.url("/ready"))
        assert (ready.status_code, ready.json()["ready"]) == (503, False)
        refused = await asyncio.to_thread(httpx.post, live.url("/hubs/echo/negotiate?negotiateVersion=1"))
        assert refused.status_code == 503
        stream = await asyncio.to_thread(httpx.get, live.url("/hubs/echo?id=whatever"))
        assert (stream.status_code, stream.headers["retry-after"]) == (503, "1")
