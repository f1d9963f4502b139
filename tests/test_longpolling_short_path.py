"""A poll that finds output waiting is answered at once: no task watches for the client leaving, no timer."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from serverparts import Recorder, handshaken, invoke, parts

from gateway.server.asgi import Request
from gateway.transports.base import TransportOptions
from gateway.transports.longpolling import LongPollingTransport


async def test_a_poll_that_finds_output_starts_no_task() -> None:
    p = parts(Recorder())
    conn = await handshaken(p)
    poll = LongPollingTransport(TransportOptions(poll_timeout=5.0))
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": b"id=x"})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client stays
        return {"type": "http.disconnect"}

    await poll.serve(conn, request, receive, send)  # the first poll: answered at once, empty
    conn.push(invoke("news", 1))
    loop = asyncio.get_running_loop()
    tasks: list[Coroutine[Any, Any, Any]] = []
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        tasks.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        await poll.serve(conn, request, receive, send)
    finally:
        loop.set_task_factory(factory)
    assert tasks == []
    assert sent[-2]["status"] == 200 and b'"target":"news"' in sent[-1]["body"]
    assert conn.core.state.value == "detached"
