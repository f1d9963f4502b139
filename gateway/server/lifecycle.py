"""Where a connection of this process begins and ends.

It begins at negotiate (``create``) or when another process hands it over (``restore``); it lives in
the registry, served by whichever transport streams attach to it; it ends in ``closed``: out of the
registry, its deadlines and the pending connections, out of the backplane's directory, its Close message
kept a while for a last poll, and the handler told.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from ..backplane import Backplane
from ..backplane.messages import ConnectionState
from ..protocol import Connection, Limits
from . import metrics
from .connection import ServerConnection
from .deadlines import Deadlines
from .handler import Handler
from .limits import PendingLimiter
from .lookup import Closed
from .registry import Registry

log = logging.getLogger("gateway")


class Lifecycle:
    """Creates, restores and closes the connections of one hub."""

    def __init__(
        self, hub: str, registry: Registry, backplane: Backplane, handler: Handler, closed: Closed, *,
        limits: Limits, clock: Callable[[], float], deadlines: Deadlines, pending: PendingLimiter,
    ) -> None:
        self.hub = hub
        self.registry = registry
        self.backplane = backplane
        self.handler = handler
        self.closed = closed
        self.limits = limits
        self.clock = clock
        self.deadlines = deadlines
        self.pending = pending
        self._tasks: set[asyncio.Task[None]] = set()
        self._forgotten: list[str] = []  # tokens of closed connections, for the backplane to forget

    def create(self, stateful: bool, user: str | None, *, version: int = 1) -> ServerConnection:
        """A new connection; in negotiate version 0 its id is its token, as the spec has it."""
        connection_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(24) if version >= 1 else connection_id
        core = Connection(self.clock(), stateful=stateful, limits=self.limits)
        conn = self._build(connection_id, token, core, user)
        self.registry.add(conn)
        conn.reschedule()
        return conn

    def restore(self, state: ConnectionState) -> ServerConnection:
        """A connection handed over by another process (the node adds it to the registry, then reschedules it)."""
        core = Connection.restore(state.core, self.clock(), self.limits)
        return self._build(state.id, state.token, core, state.user)

    def _build(self, connection_id: str, token: str, core: Connection, user: str | None) -> ServerConnection:
        return ServerConnection(connection_id, token, core, self.clock, self.handler.received, self.ended, user,
                                self.deadlines.schedule)

    def ended(self, conn: ServerConnection) -> None:
        """The connection closed: forget it, keep its Close message for a last poll, tell the handler."""
        handshaken = conn.id in self.registry.by_id and conn.core.close_reason != "handshake timeout"
        self.registry.remove(conn)
        self.pending.discard(conn.id)
        self.deadlines.discard(conn)
        if conn.stream is None and conn.core.has_output:  # no stream to carry the Close message: keep it a while
            self.closed.keep(conn)
        self._forgotten.append(conn.token)
        if len(self._forgotten) == 1:  # one task drains them all: a burst of closes spawns one task, not thousands
            self.spawn(self._forget())
        metrics.closed(conn, self.clock())
        log.info("connection %s: closed (%s)", conn.id, conn.core.close_reason or "normal")
        if handshaken:
            self.spawn(self.handler.closed(conn, conn.core.close_reason))

    async def _forget(self) -> None:
        while self._forgotten:
            batch, self._forgotten = self._forgotten, []
            for token in batch:
                await self.backplane.forget(self.hub, token)

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
