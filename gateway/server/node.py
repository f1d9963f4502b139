"""The local node: what a backplane delivers to in this process, for one hub.

Sends and group changes go to the registry; a connection handed over to another process leaves as a
``ConnectionState`` and arrives as one; a POST or DELETE forwarded from another process is answered here.
What an invocation that was running here pushes after the handover follows the connection through the
backplane, in order, as a send to its id.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from ..backplane import Target
from ..backplane.messages import ConnectionState, ForwardOp, GroupChange, Send
from ..protocol.broadcast import Broadcast
from . import metrics
from .connection import ServerConnection
from .endpoints import receive_text
from .lifecycle import Lifecycle
from .registry import Registry

log = logging.getLogger("gateway")


class Node:
    """Implements the backplane's ``LocalNode`` over a registry; the lifecycle rebuilds a handed-over connection."""

    __slots__ = ("registry", "lifecycle", "publish", "_late", "_sending")

    def __init__(self, registry: Registry, lifecycle: Lifecycle,
                 publish: Callable[[Target, Broadcast], Awaitable[None]]) -> None:
        self.registry = registry
        self.lifecycle = lifecycle
        self.publish = publish
        self._late: deque[tuple[Target, Broadcast]] = deque()  # pushed to connections that left, in order
        self._sending: asyncio.Task[None] | None = None

    def deliver(self, target: Target, record: Broadcast, *, coalesce: bool = False) -> int:
        return self.registry.deliver(target, record, coalesce=coalesce)

    def group_add(self, connection_id: str, group: str) -> bool:
        return self.registry.group_add(connection_id, group)

    def group_remove(self, connection_id: str, group: str) -> bool:
        return self.registry.group_remove(connection_id, group)

    def groups(self) -> frozenset[str]:
        return frozenset(self.registry.groups)

    def export_connection(self, connection_id: str) -> ConnectionState | None:
        """Hand a connection over to another process: its state, and it is gone from here."""
        conn = self.registry.by_id.get(connection_id)
        if conn is None:
            return None
        state = ConnectionState(conn.id, conn.token, conn.user, tuple(sorted(conn.groups)), conn.core.snapshot())
        self.registry.remove(conn)
        conn.hand_over(self._follower(conn))
        self.lifecycle.handler.moved(conn)
        metrics.retired(conn)
        metrics.handovers.add(1, {metrics.DIRECTION: "transmit"})
        log.info("connection %s: handed over to another process", conn.id)
        return state

    def _follower(self, conn: ServerConnection) -> Callable[[str | bytes], None]:
        """Where a record pushed to ``conn`` after it left goes: to its new holder, after what is queued."""
        target = Target("connection", (conn.id,))
        name = conn.core.protocol.name

        def follow(record: str | bytes) -> None:
            self._late.append((target, Broadcast.of({name: record})))
            if self._sending is None or self._sending.done():
                self._sending = asyncio.ensure_future(self._send_late())
        return follow

    async def _send_late(self) -> None:
        while self._late:
            target, record = self._late.popleft()
            try:
                await self.publish(target, record)
            except Exception:  # the backplane logs its own failures; the next record still goes
                log.exception("a record for connection %s that moved away could not follow it", target.names[0])

    def adopt_connection(self, state: ConnectionState, ops: Sequence[Send | GroupChange]) -> None:
        """Take over a connection handed over by another process, then apply what came meanwhile."""
        conn = self.lifecycle.restore(state)
        self.registry.add(conn)
        metrics.handovers.add(1, {metrics.DIRECTION: "receive"})
        conn.reschedule()
        for group in state.groups:
            self.registry.group_add(conn.id, group)
        for op in ops:
            if isinstance(op, Send):
                payload = op.record.record(conn.core.protocol)
                if payload is not None and self.registry.targets(op.target, conn):
                    conn.push(payload)
            elif op.connection_id == conn.id:
                (self.registry.group_add if op.add else self.registry.group_remove)(conn.id, op.group)

    async def forwarded(self, connection_id: str, op: ForwardOp, body: str) -> tuple[int, str | None]:
        """A POST or DELETE that reached another process, for a connection held here."""
        conn = self.registry.by_id.get(connection_id)
        if conn is None:
            return 410, None
        if op == "delete":
            conn.close(None)
            return 202, None
        binary = conn.core.protocol.transfer_format == "Binary" or not conn.core.handshaken
        if op == "invalid" or (op == "binary" and not binary):
            conn.close("the body is not valid UTF-8")
            return 400, "the body is not valid UTF-8"
        return await receive_text(conn, base64.b64decode(body) if op == "binary" else body)
