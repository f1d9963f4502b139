"""Token lookup: what a request's ``?id=`` names, as a value the endpoints branch on.

* ``Found``: a live connection of this process (moved here first if another process held it and the
  request is a stream).
* ``Lingering``: a connection that closed with no stream to carry its Close message; a GET soon after
  still gets that message, in its transport's framing.
* ``HeldElsewhere``: a POST or DELETE for a connection another process holds: the backplane forwards it.
* ``Unknown``: nothing here by that token (for a POST or DELETE, known before its body is read).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from ..backplane import Backplane
from .asgi import Request
from .connection import ServerConnection
from .registry import Registry


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
    """Closed connections whose Close message no stream carried yet, each kept ``linger`` seconds
    (``Settings.closed_linger``)."""

    __slots__ = ("linger", "_by_token")

    def __init__(self, linger: float) -> None:
        self.linger = linger
        self._by_token: dict[str, ServerConnection] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def keep(self, conn: ServerConnection) -> None:
        self._by_token[conn.token] = conn
        with contextlib.suppress(RuntimeError):  # no running loop: nothing will poll for it either
            asyncio.get_running_loop().call_later(self.linger, self._by_token.pop, conn.token, None)

    def take(self, token: str) -> ServerConnection | None:
        return self._by_token.pop(token, None)


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
            held = await self.backplane.held_elsewhere(self.hub, token)
            return HeldElsewhere(token) if held else Unknown(token)
        lingering = self.closed.take(token) if request.method == "GET" else None
        return Unknown(token) if lingering is None else Lingering(lingering)
