"""The comparison page's server side: each pane's wire figures, a cut of its connection, and a link delay.

The delay is for people who open the demo by hand (a browser's own network emulation is what the e2e test uses):
every message of the hub's requests reaches the app, or the client, ``delay_ms / 2`` later, in order, as on a
link with that round-trip time. It is the demo's and process-wide: the page that picks a preset sets it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..app import Gateway

Message = MutableMapping[str, Any]
ASGI = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                Awaitable[None]]
MAX_IDS = 8
MAX_DELAY_MS = 2000
PRESETS_MS = {"LAN": 0, "Fast 4G": 80, "Slow 4G": 300, "3G": 600, "flaky": 400}
"""Round-trip times the server adds for each preset of the page (when the browser does not emulate it)."""


class Delay:
    """An ASGI wrapper that holds each message of a request ``ms / 2`` each way; 0 passes them through."""

    def __init__(self, app: ASGI) -> None:
        self.app = app
        self.ms = 0

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if self.ms <= 0 or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        half = self.ms / 2000
        queue: asyncio.Queue[tuple[float, Message] | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        deliverer = asyncio.ensure_future(_deliver(queue, send))

        async def late_receive() -> Message:
            message: Message = await receive()
            if message["type"] not in ("http.disconnect", "websocket.disconnect"):
                await asyncio.sleep(half)
            return message

        async def late_send(message: Message) -> None:
            if deliverer.done():  # the client went away: the app learns it as from a real send
                raise OSError("the client is gone")
            queue.put_nowait((loop.time() + half, message))

        try:
            await self.app(scope, late_receive, late_send)
        finally:
            queue.put_nowait(None)
            await asyncio.shield(deliverer)


async def _deliver(queue: asyncio.Queue[tuple[float, Message] | None], send: Any) -> None:
    """Send each queued message at its time, in order; stop at the end mark or the first failed send."""
    loop = asyncio.get_running_loop()
    while (item := await queue.get()) is not None:
        due, message = item
        await asyncio.sleep(max(0.0, due - loop.time()))
        try:
            await send(message)
        except Exception:  # noqa: BLE001 - the client is gone; the app learns it on its next send
            return


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_IDS or not all(isinstance(i, str) for i in value):
        raise ValueError(f"ids must be a list of at most {MAX_IDS} connection ids")
    return value


class Conditions:
    """The demo endpoints of the comparison page, for one hub."""

    def __init__(self, gateway: Gateway, delay: Delay) -> None:
        self.gateway = gateway
        self.delay = delay

    async def wire(self, request: Request) -> Response:
        """``GET /demo/wire?ids=a,b``: each connection's transport and wire counts (null when not held here)."""
        ids = request.query_params.get("ids", "").split(",")[:MAX_IDS]
        found = {i: self.gateway.connections.get(i) for i in ids if i}
        return JSONResponse({i: None if info is None else {"transport": info.transport,
                                                          **dataclasses.asdict(info.wire)}
                             for i, info in found.items()}, headers={"Cache-Control": "no-store"})

    async def cut(self, request: Request) -> Response:
        """``POST /demo/cut {"ids": [...]}``: cut each connection's stream; answers which ones had one."""
        try:
            ids = _ids((await request.json()).get("ids"))
        except (ValueError, AttributeError):
            return JSONResponse({"error": f"the body must be {{\"ids\": [...]}}, at most {MAX_IDS} ids"}, 400)
        return JSONResponse({"cut": [i for i in ids if self.gateway.cut(i)]})

    async def set_delay(self, request: Request) -> Response:
        """``POST /demo/delay {"ms": N}`` or ``{"preset": "Slow 4G"}``: the round-trip time the server adds."""
        try:
            body = await request.json()
            ms = PRESETS_MS[body["preset"]] if "preset" in body else int(body["ms"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse({"error": f"give ms (0 to {MAX_DELAY_MS}) or a preset of {list(PRESETS_MS)}"}, 400)
        self.delay.ms = max(0, min(MAX_DELAY_MS, ms))
        return JSONResponse({"ms": self.delay.ms})
