"""Token lookup: what a request's ``?id=`` names, as a value the endpoints branch on.

* ``Found``: a live connection of this process (moved here first if another process held it and the
  request is a stream).
* ``Lingering``: a connection that closed with no stream to carry its Close message; a poll soon after
  still gets that message.
* ``HeldElsewhere``: a POST or DELETE for a token this process does not hold: the backplane may forward it.
* ``Unknown``: nothing here by that token.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backplane import Backplane
from .asgi import Request
from .connection import ServerConnection
from .registry import Registry

LINGER_SECONDS = 5.0
"""How long a closed connection's last output (its Close message) waits for a poll to take it."""


@dataclass(frozen=True, slots=True)
class Found:
    conn: ServerConnection


@dataclass(frozen=True, slots=True)
class Lingering:
    conn: ServerConnection


@dataclass(frozen=True, slots=True)
class HeldElsewhere:
    token: str


@dataclass(frozen=True, slots=True)
class Unknown:
    token: str


Lookup = Found | Lingering | HeldElsewhere | Unknown


class Closed:
    """Closed connections whose Close message no stream carried yet, kept ``linger`` seconds."""

    __slots__ = ("linger", "_by_token")

    def __init__(self, linger: float = LINGER_SECONDS) -> None:
        self.linger = linger
        self._by_token: dict[str, tuple[float, ServerConnection]] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def keep(self, conn: ServerConnection, now: float) -> None:
        self._by_token[conn.token] = (now, conn)

    def take(self, token: str) -> ServerConnection | None:
        kept = self._by_token.pop(token, None)
        return None if kept is None else kept[1]

    def expire(self, now: float) -> None:
        """Forget the connections kept for ``linger`` seconds or more."""
        if self._by_token:
            self._by_token = {t: kept for t, kept in self._by_token.items() if now - kept[0] < self.linger}


class Tokens:
    """Looks up the connection a token names, here, among the recently closed, or through the backplane."""

    __slots__ = ("hub", "registry", "backplane", "closed")

    def __init__(self, hub: str, registry: Registry, backplane: Backplane, closed: Closed) -> None:
        self.hub = hub
        self.registry = registry
        self.backplane = backplane
        self.closed = closed

    async def lookup(self, token: str, request: Request) -> Lookup:
        """What ``token`` names for this request (a GET may move the connection here)."""
        conn = self.registry.by_token.get(token)
        if conn is None and request.method == "GET" and await self.backplane.claim(self.hub, token):
            conn = self.registry.by_token.get(token)
        if conn is not None:
            return Found(conn)
        if request.method in ("POST", "DELETE"):
            return HeldElsewhere(token)
        lingering = self.closed.take(token) if _is_poll(request) else None
        return Unknown(token) if lingering is None else Lingering(lingering)


def _is_poll(request: Request) -> bool:
    return request.method == "GET" and request.scope["type"] == "http"
