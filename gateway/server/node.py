"""The local node: what a backplane delivers to in this process, for one hub.

Sends and group changes go to the registry; a connection handed over to another process leaves as a
``ConnectionState`` and arrives as one; a POST or DELETE forwarded from another process is answered here.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence

from ..backplane import Target
from ..backplane.messages import ConnectionState, ForwardOp, GroupChange, Send
from ..protocol.broadcast import Broadcast
from . import metrics
from .connection import ServerConnection
from .endpoints import receive_text
from .registry import Registry

log = logging.getLogger("gateway")


class Node:
    """Implements the backplane's ``LocalNode`` over a registry; ``restore`` rebuilds a handed-over connection."""

    __slots__ = ("registry", "restore")

    def __init__(self, registry: Registry, restore: Callable[[ConnectionState], ServerConnection]) -> None:
        self.registry = registry
        self.restore = restore

    def deliver(self, target: Target, record: Broadcast) -> int:
        return self.registry.deliver(target, record)

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
        conn.hand_over()
        metrics.retired(conn)
        metrics.handovers.add(1, {metrics.DIRECTION: "transmit"})
        log.info("connection %s: handed over to another process", conn.id)
        return state

    def adopt_connection(self, state: ConnectionState, ops: Sequence[Send | GroupChange]) -> None:
        """Take over a connection handed over by another process, then apply what came meanwhile."""
        conn = self.restore(state)
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
