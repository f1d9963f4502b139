"""The admin app: a page of live connections, groups and fallbacks, with actions, for any set of gateways.

``Admin(gateways, authenticate=...)`` is an ASGI app to mount (``Mount("/admin", admin)``). It serves the page at
its root and an admin hub at ``hub``; the page connects to that hub like any other client of the gateway, and the
hub pushes a snapshot to every admin page each ``interval`` seconds while one is connected. ``authenticate`` is
the gateway's auth hook: it guards the page and the hub's negotiate (raise ``Refused`` to refuse); without one,
only clients on this machine (loopback addresses) may use it. It shows the connections of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..app import Gateway
from ..hub import Hub, HubError
from ..server.asgi import Receive, Request, Scope, Send
from ..server.negotiate import Authenticate, Refused
from .snapshot import snapshot

log = logging.getLogger("gateway.admin")

ADMINS = "admins"


async def loopback_only(request: Request) -> str | None:
    """The default guard: clients on this machine only."""
    client = request.scope.get("client")
    with contextlib.suppress(ValueError, TypeError):
        if client and ipaddress.ip_address(client[0]).is_loopback:
            return "local"
    raise Refused(403, "the admin page is open to this machine only (give Admin an authenticate hook)")


class AdminHub(Hub):
    """What an admin page calls; the ``Admin`` it serves is set on a subclass."""

    admin: Admin

    async def on_connected(self) -> None:
        await self.groups.add(self.context.connection_id, ADMINS)
        self.admin.watching()

    async def snapshot(self) -> dict[str, Any]:
        return snapshot(self.admin.gateways)

    async def disconnect(self, hub: str, connection_id: str) -> bool:
        log.info("admin %s disconnects connection %s of %s", self.context.user, connection_id, hub)
        return self.admin.gateway(hub).disconnect(connection_id, "disconnected by an administrator")

    async def send(self, hub: str, connection_id: str, method: str, argument: Any) -> bool:
        gateway = self.admin.gateway(hub)
        if gateway.connections.get(connection_id) is None:
            return False
        await gateway.clients.client(connection_id).send(method, argument)
        return True


class Admin:
    """The admin ASGI app over ``gateways`` (see the module's docstring)."""

    def __init__(
        self, gateways: Sequence[Gateway], *, authenticate: Authenticate | None = None, interval: float = 1.0,
    ) -> None:
        self.gateways = tuple(gateways)
        self.authenticate = authenticate or loopback_only
        self.interval = interval
        hub = type("BoundAdminHub", (AdminHub,), {"admin": self})
        self.hub = Gateway(hub, name="admin", authenticate=self.authenticate)
        self.app = Starlette(routes=[Route("/", self._page), self.hub.route("/hub")])
        self._pusher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def gateway(self, name: str) -> Gateway:
        for gateway in self.gateways:
            if gateway.name == name:
                return gateway
        raise HubError(f"no hub named {name!r}")

    async def _page(self, request: StarletteRequest) -> Response:
        try:
            await self.authenticate(Request(request.scope))
        except Refused as exc:
            return JSONResponse({"error": exc.message}, exc.status)
        page = resources.files("gateway.admin").joinpath("page.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    def watching(self) -> None:
        """An admin page connected: push snapshots while any is."""
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.ensure_future(self._push())

    async def _push(self) -> None:
        while len(self.hub.connections):
            try:
                await self.hub.clients.group(ADMINS).send("snapshot", snapshot(self.gateways))
            except Exception:  # a snapshot must never stop the pushes
                log.exception("admin: a snapshot failed")
            await asyncio.sleep(self.interval)


__all__ = ["Admin", "AdminHub", "loopback_only"]
