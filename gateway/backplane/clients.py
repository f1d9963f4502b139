"""Addressing clients through a backplane: ``all``, ``group``, ``client`` and ``user`` targets.

Usable from any process, with or without connections: a job worker publishes with it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..protocol.broadcast import Broadcast
from .messages import Target

Publish = Callable[[Target, Broadcast], Awaitable[None]]


class ClientProxy:
    """Calls a client method on every connection a target names."""

    __slots__ = ("_publish", "_target")

    def __init__(self, publish: Publish, target: Target) -> None:
        self._publish = publish
        self._target = target

    async def send(self, method: str, *args: Any) -> None:
        """Invoke ``method(*args)`` on the clients; the record is encoded once per hub protocol for all of them.

        Raises TypeError when no hub protocol can carry ``args``.
        """
        broadcast = Broadcast(method, list(args))
        broadcast.check()
        await self._publish(self._target, broadcast)


class HubClients:
    """``all``, ``group``, ``client`` and ``user`` targets; usable from outside any hub."""

    __slots__ = ("_publish",)

    def __init__(self, publish: Publish) -> None:
        self._publish = publish

    @property
    def all(self) -> ClientProxy:
        return ClientProxy(self._publish, Target("all"))

    def all_except(self, *connection_ids: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("all", (), connection_ids))

    def group(self, name: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("group", (name,)))

    def groups(self, *names: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("group", names))

    def group_except(self, name: str, *connection_ids: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("group", (name,), connection_ids))

    def client(self, connection_id: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("connection", (connection_id,)))

    def clients(self, *connection_ids: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("connection", connection_ids))

    def user(self, user_id: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("user", (user_id,)))

    def users(self, *user_ids: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("user", user_ids))
