"""A Starlette route for a gateway: ``/hubs/jobs`` itself and everything under it, HTTP and WebSocket."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, cast

from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send


def route_path(scope: Scope) -> str:
    """The request path below the app's ``root_path`` (what a route matches against)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    rest = path[len(root_path):]
    return rest if rest == "" or rest.startswith("/") else path


class GatewayRoute(BaseRoute):
    """Unlike ``Mount``, it matches the base path without a trailing slash (SignalR clients use it)."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        self.path = path.rstrip("/")
        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        path = route_path(scope)
        if path != self.path and not path.startswith(self.path + "/"):
            return Match.NONE, {}
        root_path = scope.get("root_path", "")
        return Match.FULL, {"root_path": root_path + self.path, "app_root_path": scope.get("app_root_path", root_path)}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    def handle(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        """The gateway's coroutine, for the router to await: no frame of this route stays alive while a stream is
        held."""
        return cast("Coroutine[Any, Any, None]", self.app(scope, receive, send))
