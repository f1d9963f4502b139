"""The mountable admin app: its auth hook guards the page and the hub; its snapshot and actions, live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live import Live, serve
from starlette.applications import Starlette
from starlette.routing import Mount

from gateway import Gateway, Refused
from gateway.admin import Admin
from gateway.client import HubClient
from gateway.demo.hubs import EchoHub
from gateway.server.asgi import Request

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def admins_only(request: Request) -> str:
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        raise Refused(401, "an admin token is required")
    return "ops"


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    echo = Gateway(EchoHub, name="echo")
    app = Starlette(routes=[echo.route("/hubs/echo"), Mount("/admin", Admin([echo], authenticate=admins_only,
                                                                               interval=0.1))])
    with serve(app) as server:
        yield server


async def get(url: str, **options: Any) -> httpx.Response:
    return await asyncio.to_thread(httpx.request, options.pop("method", "GET"), url, **options)


async def test_the_hook_guards_the_page_and_the_hub(live: Live) -> None:
    assert (await get(live.url("/admin/"))).status_code == 401
    negotiate = live.url("/admin/hub/negotiate?negotiateVersion=1")
    assert (await get(negotiate, method="POST")).status_code == 401
    page = await get(live.url("/admin/"), headers=AUTH)
    assert page.status_code == 200 and "Gateway admin" in page.text
    assert (await get(negotiate, method="POST", headers=AUTH)).status_code == 200


async def test_snapshots_are_pushed_and_the_actions_reach_the_connection(live: Live) -> None:
    watched = HubClient(live.url("/hubs/echo"), transport="ServerSentEvents")
    pushed: asyncio.Queue[Any] = asyncio.Queue()
    watched.on("note", pushed.put_nowait)
    await watched.start()
    await watched.invoke("Join", "room")
    admin = HubClient(live.url("/admin/hub"), headers=AUTH)
    snapshots: asyncio.Queue[Any] = asyncio.Queue()
    admin.on("snapshot", snapshots.put_nowait)
    await admin.start()
    try:
        (hub,) = (await asyncio.wait_for(snapshots.get(), 5))["hubs"]
        (row,) = [c for c in hub["connections"] if c["id"] == watched.connection_id]
        assert (row["transport"], row["groups"], row["messagesIn"]) == ("ServerSentEvents", ["room"], 1)
        assert hub["groups"] == {"room": 1} and hub["byTransport"]["ServerSentEvents"] == 1
        assert await admin.invoke("Send", "echo", watched.connection_id, "note", {"hi": 1}) is True
        assert await asyncio.wait_for(pushed.get(), 5) == {"hi": 1}
        assert await admin.invoke("Disconnect", "echo", watched.connection_id) is True
        assert await asyncio.wait_for(watched.wait_closed(), 5) == "disconnected by an administrator"
        assert await admin.invoke("Disconnect", "echo", watched.connection_id) is False
    finally:
        await admin.close()
        await watched.close()
