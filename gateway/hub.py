"""Hubs: server methods clients invoke by name, and ``clients`` to call them back.

A Hub subclass's public ``async`` methods are its methods. A client's target matches the method's
name, or its snake_case form (``EchoPush`` calls ``echo_push``). A hub instance is made per call, with
``context``, ``clients`` and ``groups`` set, as in SignalR.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .backplane import Ask, Backplane, ClientProxy, HubClients, Publish
from .protocol import Received, State
from .protocol.messages import CancelInvocation, Close, Completion, Invocation, StreamInvocation, StreamItem
from .server import tracing
from .server.connection import ServerConnection
from .server.registry import GroupLimitExceeded
from .streams import (
    ClientResultError,
    ClientResultTimeout,
    ClientStreamError,
    ConnectionStreams,
    HubError,
    StreamLimits,
    UploadStream,
    bind_streams,
    is_stream_method,
    run_stream,
    stream_parameters,
)

__all__ = [
    "ClientResultError", "ClientResultTimeout", "ClientStreamError", "Groups", "Hub", "HubCallerClients",
    "HubCallerContext", "HubDispatcher", "HubError", "hub_methods",
]

log = logging.getLogger("gateway")

Method = Callable[..., Any]


class HubCallerClients(HubClients):
    """HubClients plus the targets relative to the calling connection."""

    __slots__ = ("_caller",)

    def __init__(self, publish: Publish, caller: str, ask: Ask | None = None) -> None:
        super().__init__(publish, ask)
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
        items = self._conn.items
        if items is None:
            items = self._conn.items = {}
        return items

    def abort(self, error: str | None = None) -> None:
        """Close the calling connection."""
        self._conn.close(error)


class Hub:
    """Subclass this; public async methods become callable by clients.

    ``context``, ``clients`` and ``groups`` are made on first use, so a method that needs none of
    them (an echo) costs no allocation for them.
    """

    __slots__ = ("_conn", "_dispatcher")

    server_methods: frozenset[str] = frozenset()
    """Names of async methods the server calls and clients may not (an authorization hook)."""

    def __init__(self, conn: ServerConnection, dispatcher: HubDispatcher) -> None:
        self._conn = conn
        self._dispatcher = dispatcher

    @property
    def context(self) -> HubCallerContext:
        return HubCallerContext(self._conn)

    @property
    def clients(self) -> HubCallerClients:
        return HubCallerClients(self._dispatcher.publish, self._conn.id, self._dispatcher.ask)

    @property
    def groups(self) -> Groups:
        return self._dispatcher.groups

    async def on_connected(self) -> None:
        """Called once a connection's handshake completes."""

    async def on_disconnected(self, error: str | None) -> None:
        """Called once a connection has closed."""


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def hub_methods(hub: type[Hub]) -> dict[str, Method]:
    """The callable methods of a hub class, by name and by its PascalCase form (``echo_push``, ``EchoPush``):
    its public ``async def`` methods, async generators (server streams) included, but not ``server_methods``."""
    hidden = set(dir(Hub)) | hub.server_methods
    methods = {
        name: member for name, member in inspect.getmembers(hub, _is_async)
        if not name.startswith("_") and name not in hidden
    }
    return {**{_pascal(name): member for name, member in methods.items()}, **methods}


def _is_async(member: object) -> bool:
    return inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)


def _fits(method: Method, arguments: list[Any]) -> bool:
    """Whether ``arguments`` fit the method's parameters (asked only when a call raised TypeError)."""
    try:
        inspect.signature(method).bind(None, *arguments)
    except TypeError:
        return False
    return True


def _failure(conn: ServerConnection, target: str, method: Method, arguments: list[Any], exc: Exception) -> str:
    """The error a client gets for a hub method that raised ``exc`` (logged unless the hub meant it)."""
    if isinstance(exc, HubError | GroupLimitExceeded):
        return str(exc)
    if isinstance(exc, TypeError) and not _fits(method, arguments):
        log.info("connection %s: bad call of %r: %s", conn.id, target, exc)
        return f"Failed to invoke '{target}': wrong arguments."
    log.exception("connection %s: hub method %r failed", conn.id, target)
    return f"An unexpected error occurred invoking '{target}' on the server."


Call = Invocation | StreamInvocation
DEFAULT_LIMITS = StreamLimits()


def may_ask(method: Method) -> bool:
    """Whether a method's code (nested functions included) names ``invoke``: it may wait for a client result,
    so its connection's reading must go on while it runs. A method that calls a helper to ask is not seen."""
    code = getattr(inspect.unwrap(method), "__code__", None)
    return code is None or "invoke" in set(_names(code))


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _open(gate: asyncio.Future[None]) -> None:
    if not gate.done():
        gate.set_result(None)


class HubDispatcher:
    """Runs the hub for one connection's messages: invocations, streams both ways, client results, lifecycle.

    It is the server's ``Handler``: ``received`` and ``closed``. An invocation runs while the connection's
    reading waits for it (calls are handled in order), unless it takes client streams, or it waits for a
    client result from this connection: then reading goes on, so that the items or the answer can come in.
    A method that can do neither (``may_ask`` is false, no stream parameter) runs in the reader itself,
    with no task of its own.
    """

    def __init__(
        self, hub: type[Hub], name: str, backplane: Backplane, publish: Publish,
        limits: StreamLimits = DEFAULT_LIMITS,
    ) -> None:
        self.hub = hub
        self.name = name
        self.methods = hub_methods(hub)
        self.streaming = frozenset(name for name, method in self.methods.items() if is_stream_method(method))
        self.uploading = {method: stream_parameters(method) for method in self.methods.values()}
        self.groups = Groups(backplane, name)
        self.publish = publish
        self.limits = limits
        self.connections: dict[str, ConnectionStreams] = {}
        """The streams and client results of the connections that have some, by connection id."""
        self.find: Callable[[str], ServerConnection | None] = lambda connection_id: None
        """The local connection of an id (``Gateway`` sets it to its registry's lookup)."""
        self.asking = frozenset(method for method in self.methods.values() if may_ask(method))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inline: dict[str, asyncio.Task[Any] | None] = {}
        """By connection id: the reader running one of its invocations itself (a call that does not ask)."""
        self._gates: dict[str, asyncio.Future[None]] = {}
        """By connection id: what its reading awaits while an invocation runs; a client result resolves it."""

    async def received(self, conn: ServerConnection, received: Received) -> None:
        if received.handshake:
            log.info("connection %s: handshake done on %s", conn.id, conn.stream)
            await self._lifecycle(conn, "on_connected")
        for message in received.messages:
            if isinstance(message, Invocation):
                await self._invoke(conn, message)
            elif isinstance(message, StreamInvocation):
                self._stream(conn, message)
            elif isinstance(message, StreamItem):
                await self._streams(conn).item(message)
            elif isinstance(message, Completion):
                self._streams(conn).completed(message)
            elif isinstance(message, CancelInvocation):
                self._streams(conn).cancel(message.invocation_id)
            elif isinstance(message, Close):
                log.info("connection %s: the client closed it", conn.id)
                conn.close(None)

    def _streams(self, conn: ServerConnection) -> ConnectionStreams:
        state = self.connections.get(conn.id)
        if state is None:
            state = self.connections[conn.id] = ConnectionStreams(conn, self.limits)
        return state

    async def _invoke(self, conn: ServerConnection, message: Invocation) -> None:
        method = self.methods.get(message.target)
        if method is None:
            log.info("connection %s: unknown method %r", conn.id, message.target)
            self._refuse(conn, message, f"Unknown hub method '{message.target}'")
        elif message.target in self.streaming:
            self._refuse(conn, message, f"The client attempted to invoke the streaming '{message.target}' method "
                                        "with a non-streaming invocation.")
        else:
            arguments = self._bind(conn, message, method)
            if arguments is None:
                return
            if not message.stream_ids and method not in self.asking:
                await self._run_here(conn, message, method, arguments)
                return
            gate = None if message.stream_ids else asyncio.get_running_loop().create_future()
            task = self._spawn(self._call(conn, message, method, arguments, gate))
            if gate is not None:
                await self._wait(conn, task, gate)

    @staticmethod
    def _refuse(conn: ServerConnection, message: Call, error: str) -> None:
        if message.invocation_id is not None:
            conn.push_message(Completion(message.invocation_id, error=error))

    def _bind(self, conn: ServerConnection, message: Call, method: Method) -> list[Any] | None:
        """The call's arguments, the client's streams bound in; None (and the error sent) if they cannot be."""
        stream_ids = message.stream_ids or []
        if not stream_ids and not self.uploading[method]:
            return message.arguments
        state = self._streams(conn)
        if not state.room_for(len(stream_ids)):
            self._refuse(conn, message, f"Too many streams on this connection (limit {self.limits.max_streams}).")
            return None
        uploads: list[UploadStream] = []
        try:
            uploads = state.open_uploads(stream_ids)
            return bind_streams(message.arguments, uploads, self.uploading[method])
        except HubError as exc:
            state.close_uploads(uploads)
            self._refuse(conn, message, str(exc))
            return None

    async def _call(
        self, conn: ServerConnection, message: Invocation, method: Method, arguments: list[Any],
        gate: asyncio.Future[None] | None,
    ) -> None:
        reply = message.invocation_id
        try:
            with tracing.invocation(self.name, message.target, conn.id, message.headers):
                try:
                    result = await method(self.hub(conn, self), *arguments)
                except Exception as exc:
                    tracing.failed(exc)
                    self._refuse(conn, message, _failure(conn, message.target, method, arguments, exc))
                    return
                if reply is not None:
                    self._complete(conn, message, reply, result)
        finally:
            if message.stream_ids:
                self._end_uploads(conn, message)
            if gate is not None:  # the reader goes on now, not a turn of the loop later
                _open(gate)

    async def _run_here(self, conn: ServerConnection, message: Invocation, method: Method,
                        arguments: list[Any]) -> None:
        """A call that asks no client result: the reader runs it (it would wait for it anyway)."""
        self._inline[conn.id] = asyncio.current_task()
        try:
            await self._call(conn, message, method, arguments, None)
        finally:
            self._inline.pop(conn.id, None)

    def _end_uploads(self, conn: ServerConnection, message: Call) -> None:
        state = self.connections.get(conn.id)
        if message.stream_ids and state is not None:
            state.close_uploads([u for i in message.stream_ids if (u := state.uploads.get(i)) is not None])

    async def _wait(self, conn: ServerConnection, task: asyncio.Task[None], gate: asyncio.Future[None]) -> None:
        """Wait for an invocation (its end opens ``gate``), unless (or until) it waits for a client result from
        this connection (``ask`` opens it then)."""
        if task.done():
            return
        self._gates[conn.id] = gate
        task.add_done_callback(lambda _: _open(gate))
        try:
            await gate
        finally:
            if self._gates.get(conn.id) is gate:
                del self._gates[conn.id]

    def _stream(self, conn: ServerConnection, message: StreamInvocation) -> None:
        method = self.methods.get(message.target)
        state = self._streams(conn)
        if method is None:
            log.info("connection %s: unknown method %r", conn.id, message.target)
            self._refuse(conn, message, f"Unknown hub method '{message.target}'")
        elif message.target not in self.streaming:
            self._refuse(conn, message, f"The client attempted to invoke the non-streaming '{message.target}' "
                                        "method with a streaming invocation.")
        elif message.invocation_id in state.streams:
            self._refuse(conn, message, f"Invocation ID '{message.invocation_id}' is already in use.")
        elif not state.room_for(1):
            self._refuse(conn, message, f"Too many streams on this connection (limit {self.limits.max_streams}).")
        else:
            arguments = self._bind(conn, message, method)
            if arguments is not None:
                state.start(message.invocation_id, self._serve(conn, message, method, arguments))

    async def _serve(self, conn: ServerConnection, message: StreamInvocation, method: Method,
                     arguments: list[Any]) -> None:
        """A server stream: open the method's iterator, then push its items until the end."""
        def failure(exc: Exception) -> str:
            return _failure(conn, message.target, method, arguments, exc)

        try:
            result = method(self.hub(conn, self), *arguments)
            iterator: AsyncIterator[Any] = (await result if inspect.isawaitable(result) else result).__aiter__()
        except Exception as exc:
            self._refuse(conn, message, failure(exc))
            self._end_uploads(conn, message)
            return
        try:
            await run_stream(conn, message.invocation_id, iterator, self.limits.stream_buffer, failure)
        finally:
            self._end_uploads(conn, message)

    @staticmethod
    def _complete(conn: ServerConnection, message: Invocation, reply: str, result: Any) -> None:
        try:
            record = conn.core.protocol.encode_completion(reply, result)
        except (TypeError, ValueError) as exc:
            log.warning("connection %s: the result of %r cannot be encoded in %s: %s", conn.id, message.target,
                        conn.core.protocol.name, exc)
            conn.push_message(Completion(reply, error=f"The result of '{message.target}' could not be sent."))
            return
        conn.push(record, direct=True)  # written now if the stream is idle: before the POST that asked is answered

    async def ask(self, connection_id: str, method: str, arguments: list[Any], timeout: float | None) -> Any:
        """A client result: invoke ``method`` on one connection of this process and return its answer."""
        conn = self.find(connection_id)
        if conn is None or conn.core.state is State.CLOSED:
            raise ClientResultError(f"Connection {connection_id} is not connected to this server "
                                    "(client results across processes are not supported yet).")
        if self._inline.get(connection_id, False) is asyncio.current_task():
            raise ClientResultError(f"A client result from connection {connection_id} was asked by a call its "
                                    "reader runs, which would wait for itself: ask from the hub method's own body "
                                    "(a method whose code names invoke runs apart from the reader).")
        gate = self._gates.get(connection_id)  # its reading may wait for the very call that asks: free it
        if gate is not None:
            _open(gate)
        return await self._streams(conn).ask(method, arguments, timeout)

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _lifecycle(self, conn: ServerConnection, name: str, *args: Any) -> None:
        try:
            await getattr(self.hub(conn, self), name)(*args)
        except Exception:
            log.exception("connection %s: %s failed", conn.id, name)

    async def closed(self, conn: ServerConnection, error: str | None) -> None:
        self._release(conn, f"The connection closed{f' ({error})' if error else ''}.")
        await self._lifecycle(conn, "on_disconnected", error)

    def moved(self, conn: ServerConnection) -> None:
        self._release(conn, "The connection moved to another server.")

    def _release(self, conn: ServerConnection, why: str) -> None:
        """End the connection's streams, client streams and client results (``why``), and free its reader."""
        state = self.connections.pop(conn.id, None)
        if state is not None:
            state.end(why)
        gate = self._gates.pop(conn.id, None)
        if gate is not None:
            _open(gate)
