"""Hubs: server methods clients invoke by name, and ``clients`` to call them back.

A Hub subclass's public ``async`` methods are its methods. A client's target matches the method's
name, or its snake_case form (``EchoPush`` calls ``echo_push``). A hub instance is made per call, with
``context``, ``clients`` and ``groups`` set, as in SignalR.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .backplane import Backplane, ClientProxy, HubClients, Publish
from .protocol import Received
from .protocol.messages import Close, Completion, Invocation, StreamInvocation
from .server.connection import ServerConnection
from .server.registry import GroupLimitExceeded

log = logging.getLogger("gateway")


class HubError(Exception):
    """Raise from a hub method: its message reaches the client as the invocation's error."""


class HubCallerClients(HubClients):
    """HubClients plus the targets relative to the calling connection."""

    __slots__ = ("_caller",)

    def __init__(self, publish: Publish, caller: str) -> None:
        super().__init__(publish)
        self._caller = caller

    @property
    def caller(self) -> ClientProxy:
        return self.client(self._caller)

    @property
    def others(self) -> ClientProxy:
        return self.all_except(self._caller)

    def others_in_group(self, name: str) -> ClientProxy:
        return self.group_except(name, self._caller)


class Groups:
    """Adds connections to groups and removes them, on whichever process holds them."""

    __slots__ = ("_backplane", "_hub")

    def __init__(self, backplane: Backplane, hub: str) -> None:
        self._backplane = backplane
        self._hub = hub

    async def add(self, connection_id: str, group: str) -> None:
        await self._backplane.group_add(self._hub, connection_id, group)

    async def remove(self, connection_id: str, group: str) -> None:
        await self._backplane.group_remove(self._hub, connection_id, group)


class HubCallerContext:
    """Who is calling: the connection id, the user (from the auth hook) and per-connection items."""

    __slots__ = ("_conn",)

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    @property
    def connection_id(self) -> str:
        return self._conn.id

    @property
    def user(self) -> str | None:
        return self._conn.user

    @property
    def items(self) -> dict[str, Any]:
        return self._conn.items

    def abort(self, error: str | None = None) -> None:
        """Close the calling connection."""
        self._conn.close(error)


class Hub:
    """Subclass this; public async methods become callable by clients.

    ``context``, ``clients`` and ``groups`` are made on first use, so a method that needs none of
    them (an echo) costs no allocation for them.
    """

    __slots__ = ("_conn", "_dispatcher")

    def __init__(self, conn: ServerConnection, dispatcher: HubDispatcher) -> None:
        self._conn = conn
        self._dispatcher = dispatcher

    @property
    def context(self) -> HubCallerContext:
        return HubCallerContext(self._conn)

    @property
    def clients(self) -> HubCallerClients:
        return HubCallerClients(self._dispatcher.publish, self._conn.id)

    @property
    def groups(self) -> Groups:
        return self._dispatcher.groups

    async def on_connected(self) -> None:
        """Called once a connection's handshake completes."""

    async def on_disconnected(self, error: str | None) -> None:
        """Called once a connection has closed."""


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def hub_methods(hub: type[Hub]) -> dict[str, Callable[..., Awaitable[Any]]]:
    """The callable methods of a hub class, by name and by its PascalCase form (``echo_push``, ``EchoPush``)."""
    base = set(dir(Hub))
    methods = {
        name: member for name, member in inspect.getmembers(hub, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in base
    }
    return {**{_pascal(name): member for name, member in methods.items()}, **methods}


def _fits(method: Callable[..., Awaitable[Any]], arguments: list[Any]) -> bool:
    """Whether ``arguments`` fit the method's parameters (asked only when a call raised TypeError)."""
    try:
        inspect.signature(method).bind(None, *arguments)
    except TypeError:
        return False
    return True


def _failure(conn: ServerConnection, message: Invocation, method: Callable[..., Awaitable[Any]], exc: Exception) -> str:
    """The error a client gets for a hub method that raised ``exc`` (logged unless the hub meant it)."""
    if isinstance(exc, HubError | GroupLimitExceeded):
        return str(exc)
    if isinstance(exc, TypeError) and not _fits(method, message.arguments):
        log.info("connection %s: bad call of %r: %s", conn.id, message.target, exc)
        return f"Failed to invoke '{message.target}': wrong arguments."
    log.exception("connection %s: hub method %r failed", conn.id, message.target)
    return f"An unexpected error occurred invoking '{message.target}' on the server."


class HubDispatcher:
    """Runs the hub for one connection's messages: invocations, lifecycle, and errors.

    It is the server's ``Handler``: ``received`` and ``closed``.
    """

    def __init__(self, hub: type[Hub], name: str, backplane: Backplane, publish: Publish) -> None:
        self.hub = hub
        self.methods = hub_methods(hub)
        self.groups = Groups(backplane, name)
        self.publish = publish

    async def received(self, conn: ServerConnection, received: Received) -> None:
        if received.handshake:
            log.info("connection %s: handshake done on %s", conn.id, conn.stream)
            await self._lifecycle(conn, "on_connected")
        for message in received.messages:
            if isinstance(message, Invocation):
                await self._invoke(conn, message)
            elif isinstance(message, StreamInvocation):
                conn.push_message(Completion(message.invocation_id, error="Streaming methods are not supported."))
            elif isinstance(message, Close):
                log.info("connection %s: the client closed it", conn.id)
                conn.close(None)

    async def _invoke(self, conn: ServerConnection, message: Invocation) -> None:
        method = self.methods.get(message.target)
        reply = message.invocation_id
        if method is None:
            log.info("connection %s: unknown method %r", conn.id, message.target)
            error: str | None = f"Unknown hub method '{message.target}'"
        else:
            try:
                result = await method(self.hub(conn, self), *message.arguments)
            except Exception as exc:
                error = _failure(conn, message, method, exc)
            else:
                error = None
                if reply is not None:
                    self._complete(conn, message, reply, result)
        if error is not None and reply is not None:
            conn.push_message(Completion(reply, error=error))

    @staticmethod
    def _complete(conn: ServerConnection, message: Invocation, reply: str, result: Any) -> None:
        try:
            record = conn.core.protocol.encode_completion(reply, result)
        except (TypeError, ValueError) as exc:
            log.warning("connection %s: the result of %r cannot be encoded in %s: %s", conn.id, message.target,
                        conn.core.protocol.name, exc)
            conn.push_message(Completion(reply, error=f"The result of '{message.target}' could not be sent."))
            return
        conn.push(record)

    async def _lifecycle(self, conn: ServerConnection, name: str, *args: Any) -> None:
        try:
            await getattr(self.hub(conn, self), name)(*args)
        except Exception:
            log.exception("connection %s: %s failed", conn.id, name)

    async def closed(self, conn: ServerConnection, error: str | None) -> None:
        await self._lifecycle(conn, "on_disconnected", error)
