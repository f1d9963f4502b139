"""The backplane interface: how a send reaches connections, wherever they live."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol, runtime_checkable

from ..protocol.broadcast import Broadcast
from .messages import ConnectionState, ForwardOp, GroupChange, Send, Target


class LocalDelivery(Protocol):
    """A process's own connections of one hub (the registry)."""

    def deliver(self, target: Target, record: Broadcast, *, coalesce: bool = False) -> int:
        """Push ``record`` to the local connections ``target`` names; how many. ``coalesce``: the caller delivers
        a backlog (a listener's messages read at once), which the streams may write together."""
        ...

    def group_add(self, connection_id: str, group: str) -> bool: ...

    def group_remove(self, connection_id: str, group: str) -> bool: ...


@runtime_checkable
class LocalNode(LocalDelivery, Protocol):
    """What a process offers a backplane that moves connections between processes (the server's node)."""

    def export_connection(self, connection_id: str) -> ConnectionState | None: ...

    def adopt_connection(self, state: ConnectionState, ops: Sequence[Send | GroupChange]) -> None: ...

    def forwarded(self, connection_id: str, op: ForwardOp, body: str) -> Awaitable[tuple[int, str | None]]: ...

    def groups(self) -> frozenset[str]:
        """The groups with at least one connection in this process."""
        ...


class Backplane(Protocol):
    """Routes sends and group changes to the process that holds each connection.

    ``announce``, ``forget``, ``claim`` and ``forward`` let any process serve any connection:
    a single process has nothing to announce, claim or forward (the in-process null object).
    """

    healthy: bool

    def register(self, hub: str, local: LocalDelivery) -> None: ...

    async def start(self) -> None: ...

    async def announce(self, hub: str, token: str, connection_id: str) -> None: ...

    async def forget(self, hub: str, token: str) -> None: ...

    async def claim(self, hub: str, token: str) -> bool: ...

    async def held_elsewhere(self, hub: str, token: str) -> bool:
        """Whether another process holds the connection of ``token`` (asked before a POST's body is read)."""
        ...

    async def forward(self, hub: str, token: str, op: ForwardOp, body: str = "") -> tuple[int, str | None] | None: ...

    async def peers(self) -> int:
        """How many other live processes share this backplane (where a draining process's connections can go)."""
        ...

    async def publish(self, hub: str, target: Target, record: Broadcast) -> None: ...

    async def group_add(self, hub: str, connection_id: str, group: str) -> None: ...

    async def group_remove(self, hub: str, connection_id: str, group: str) -> None: ...

    async def close(self) -> None: ...
