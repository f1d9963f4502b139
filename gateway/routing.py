"""A Starlette route for a gateway: ``/hubs/jobs`` itself and everything under it, HTTP and WebSocket."""

from __future__ import annotations

from typing import Any

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send


class GatewayRoute(BaseRoute):
    """Unlike ``Mount``, it matches the base path without a trailing slash (SignalR clients use it)."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        self.path = path.rstrip("/")
        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        route_path = get_route_path(scope)
        if route_path != self.path and not route_path.startswith(self.path + "/"):
            return Match.NONE, {}
        root_path = scope.get("root_path", "")
        return Match.FULL, {"root_path": root_path + self.path, "app_root_path": scope.get("app_root_path", root_path)}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
