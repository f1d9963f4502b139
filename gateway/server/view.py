"""A public, read-only view of a gateway's connections in this process: ``gateway.connections``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .connection import ServerConnection
from .registry import Registry
from .wire import WireCounts


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One connection at the moment of the snapshot. Messages are hub records (pings and acks included),
    bytes their UTF-8 size without the transport's framing."""

    id: str
    transport: str | None
    """The transport of its latest stream (None before the first); see ``attached``."""
    attached: bool
    """Whether a stream is attached now (a long-polling connection is not, between polls)."""
    user: str | None
    groups: frozenset[str]
    age: float
    """Seconds since negotiate."""
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    wire: WireCounts
    """What it cost on the network: bytes with headers and framing, frames, requests, data messages."""
    resumes: int = 0
    """Streams that resumed it in this process (after a drop, or moving to another transport)."""


@dataclass(frozen=True, slots=True)
class ConnectionCounts:
    """How many connections this process holds, by the transport of their latest stream."""

    total: int
    by_transport: dict[str, int]
    """Every offered transport, zero included."""
    pending: int
    """Negotiated connections that have not opened a stream yet."""


class ConnectionsView:
    """Counts and snapshots of one gateway's connections; no private attribute needed."""

    __slots__ = ("_registry", "_transports", "_clock")

    def __init__(self, registry: Registry, transports: tuple[str, ...], clock: Callable[[], float]) -> None:
        self._registry = registry
        self._transports = transports
        self._clock = clock

    def __len__(self) -> int:
        return len(self._registry)

    def counts(self) -> ConnectionCounts:
        """The number of connections per transport."""
        by_transport = dict.fromkeys(self._transports, 0)
        pending = 0
        for conn in self._registry.by_id.values():
            if conn.transport is None:
                pending += 1
            else:
                by_transport[conn.transport] = by_transport.get(conn.transport, 0) + 1
        return ConnectionCounts(len(self._registry), by_transport, pending)

    def snapshot(self) -> list[ConnectionInfo]:
        """Every connection, oldest first."""
        now = self._clock()
        infos = [_info(conn, now) for conn in self._registry.by_id.values()]
        return sorted(infos, key=lambda info: -info.age)

    def get(self, connection_id: str) -> ConnectionInfo | None:
        """One connection by its (public) id, or None."""
        conn = self._registry.by_id.get(connection_id)
        return None if conn is None else _info(conn, self._clock())


def _info(conn: ServerConnection, now: float) -> ConnectionInfo:
    core = conn.core
    return ConnectionInfo(
        conn.id, conn.transport, conn.stream is not None, conn.user, frozenset(conn.groups), now - core.created,
        core.messages_in, core.messages_out, core.bytes_in, core.bytes_out, conn.wire.counts(), conn.resumes,
    )


__all__ = ["ConnectionCounts", "ConnectionInfo", "ConnectionsView"]
