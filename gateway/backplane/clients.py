"""Addressing clients through a backplane: ``all``, ``group``, ``client`` and ``user`` targets.

Usable from any process, with or without connections: a job worker publishes with it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..protocol.broadcast import Broadcast
from .messages import Target

Publish = Callable[[Target, Broadcast], Awaitable[None]]
Ask = Callable[[str, str, list[Any], "float | None"], Awaitable[Any]]
"""A client result: (connection id, method, arguments, timeout or None for the default) -> the client's answer."""


class ClientProxy:
    """Calls a client method on every connection a target names."""

    __slots__ = ("_ask", "_publish", "_target")

    def __init__(self, publish: Publish, target: Target, ask: Ask | None = None) -> None:
        self._publish = publish
        self._target = target
        self._ask = ask

    async def send(self, method: str, *args: Any) -> None:
        """Invoke ``method(*args)`` on the clients; the record is encoded once per hub protocol for all of them.

        Raises TypeError when no hub protocol can carry ``args``.
        """
        broadcast = Broadcast(method, list(args))
        broadcast.check()
        await self._publish(self._target, broadcast)

    async def invoke(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Invoke ``method(*args)`` on one client and return its answer (a client result).

        Only for ``clients.client(id)`` and ``clients.caller``. Raises ``ClientResultError`` (a ``HubError``)
        when the client answers with an error, closes, or is not connected to this process, and
        ``ClientResultTimeout`` after ``timeout`` seconds (by default ``Settings.client_result_timeout``).
        """
        target = self._target
        if self._ask is None or target.kind != "connection" or len(target.names) != 1 or target.exclude:
            raise TypeError("invoke() asks one client: use clients.client(connection_id) or clients.caller")
        return await self._ask(target.names[0], method, list(args), timeout)


class HubClients:
    """``all``, ``group``, ``client`` and ``user`` targets; usable from outside any hub."""

    __slots__ = ("_ask", "_publish")

    def __init__(self, publish: Publish, ask: Ask | None = None) -> None:
        self._publish = publish
        self._ask = ask

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
        return ClientProxy(self._publish, Target("connection", (connection_id,)), self._ask)

    def clients(self, *connection_ids: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("connection", connection_ids))

    def user(self, user_id: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("user", (user_id,)))

    def users(self, *user_ids: str) -> ClientProxy:
        return ClientProxy(self._publish, Target("user", user_ids))
