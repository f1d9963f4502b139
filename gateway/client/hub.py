"""``HubClient``: invocations, client methods, keep-alive and stateful reconnect over any transport.

Theory of operation
-------------------
``start`` negotiates and opens a transport, sends the handshake and counts the transport as started
only when the handshake response has come back through it, within ``start_timeout``; otherwise the
next transport is tried with a fresh negotiate. Each transport runs one reader task per stream and
reports text and the stream's end through two callbacks; everything else here is callbacks and
timer handles, so an idle connection costs one task.

    DISCONNECTED --start--> CONNECTING --handshake--> CONNECTED --drop (stateful)--> RESUMING
    RESUMING --new stream, Sequence + replay sent--> CONNECTED
    any --close / Close message / drop (not stateful)--> CLOSED

Under stateful reconnect a ``Ledger`` numbers the trackable messages both ways. While RESUMING,
trackable sends are only recorded: the replay that follows the new stream carries them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import h11

from ..protocol import hubjson
from ..protocol.errors import ProtocolError
from ..protocol.messages import Close, Completion, HandshakeResponse, HubMessage, Invocation
from .connection import BY_NAME, ClientConnection, NoTransport
from .http import HttpError
from .stateful import Ledger
from .transport import Transport, TransportError

log = logging.getLogger("gateway.client")

Handler = Callable[..., Any]
NETWORK_ERRORS = (OSError, TransportError, HttpError, h11.ProtocolError, EOFError)


class HubError(Exception):
    """The server's error for an invocation, or its refusal of the handshake."""


class StartError(ConnectionError):
    """No transport could be started; ``attempts`` says why each failed."""

    def __init__(self, attempts: list[tuple[str, str]]) -> None:
        self.attempts = attempts
        detail = "; ".join(f"{name}: {why}" for name, why in attempts) or "the server offers no usable transport"
        super().__init__(f"could not start a connection ({detail})")


class ClientState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RESUMING = "resuming"
    CLOSING = "closing"
    CLOSED = "closed"


class HubClient:
    """A client of one hub, e.g. ``HubClient("http://127.0.0.1:8000/hubs/echo", transport="LongPolling")``.

    ``transport`` is a name or a list of names in the order to try; by default the server's order.
    """

    __slots__ = (
        "url", "headers", "stateful_reconnect", "start_timeout", "keepalive_interval", "server_timeout", "ack_interval",
        "resume_timeout", "max_message_size", "attempts", "close_error", "_choices", "_state", "_connection",
        "_handlers", "_close_callbacks", "_pending", "_ids", "_reader", "_ledger", "_handshake", "_last_sent",
        "_last_received", "_timer", "_ack_timer", "_resume_task", "_tasks", "_closed",
    )

    def __init__(
        self,
        url: str,
        *,
        transport: str | Iterable[str] | None = None,
        stateful_reconnect: bool = False,
        start_timeout: float = 5.0,
        keepalive_interval: float = 15.0,
        server_timeout: float = 30.0,
        ack_interval: float = 1.0,
        resume_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        choices = [transport] if isinstance(transport, str) else list(transport) if transport is not None else None
        unknown = [name for name in choices or () if name not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown transports {unknown}; known: {list(BY_NAME)}")
        self.url = url
        self.headers = tuple((headers or {}).items())  # sent with negotiate only: the token does the rest
        self.stateful_reconnect = stateful_reconnect
        self.start_timeout = start_timeout
        self.keepalive_interval = keepalive_interval
        self.server_timeout = server_timeout
        self.ack_interval = ack_interval
        self.resume_timeout = resume_timeout
        self.max_message_size = max_message_size
        self.attempts: list[tuple[str, str]] = []
        self.close_error: str | None = None
        self._choices = choices
        self._state = ClientState.DISCONNECTED
        self._connection: ClientConnection | None = None
        self._handlers: dict[str, list[Handler]] = {}
        self._close_callbacks: list[Callable[[str | None], Any]] = []
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._reader = hubjson.RecordReader(max_message_size)
        self._ledger: Ledger | None = None
        self._handshake: asyncio.Future[HandshakeResponse] | None = None
        self._last_sent = self._last_received = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._ack_timer: asyncio.TimerHandle | None = None
        self._resume_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()

    # --- public -------------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def transport(self) -> str | None:
        """The name of the transport in use."""
        return self._connection.transport.name if self._connection else None

    @property
    def _transport(self) -> Transport:
        """The transport object (tests cut its stream with ``await client._transport.abort()``)."""
        if self._connection is None:
            raise RuntimeError("the client is not started")
        return self._connection.transport

    @property
    def connection_id(self) -> str | None:
        return self._connection.connection_id if self._connection else None

    def on(self, name: str, handler: Handler) -> None:
        """Call ``handler(*arguments)`` (sync or async) when the server invokes ``name``."""
        self._handlers.setdefault(name.lower(), []).append(handler)

    def off(self, name: str, handler: Handler | None = None) -> None:
        handlers = self._handlers.get(name.lower(), [])
        if handler is None:
            handlers.clear()
        elif handler in handlers:
            handlers.remove(handler)

    def on_close(self, callback: Callable[[str | None], Any]) -> None:
        """Call ``callback(error)`` once the connection has closed (error None for a normal close)."""
        self._close_callbacks.append(callback)

    async def start(self) -> None:
        """Negotiate, connect and handshake; falls back through the transports until one starts."""
        if self._state is not ClientState.DISCONNECTED:
            raise RuntimeError(f"cannot start a client that is {self._state.value}")
        tried: list[str] = []

        def choose(offered: tuple[str, ...]) -> str | None:
            order = self._choices if self._choices is not None else [t for t in offered if t in BY_NAME]
            name = next((t for t in order if t in offered and t not in tried), None)
            if name is not None:
                tried.append(name)
            return name

        while True:
            count = len(tried)
            try:
                await asyncio.wait_for(self._start_once(choose), self.start_timeout)
                return
            except NoTransport:
                break
            except (*NETWORK_ERRORS, ProtocolError, HubError, TimeoutError) as exc:
                name = tried[-1] if len(tried) > count else "negotiate"
                timeout = isinstance(exc, TimeoutError)
                why = f"not started within {self.start_timeout} s" if timeout else str(exc) or repr(exc)
                log.info("%s failed to start: %s", name, why)
                self.attempts.append((name, why))
                await self._abandon()
                if isinstance(exc, HubError) or name == "negotiate":
                    break
        self._state = ClientState.CLOSED
        self._closed.set()
        raise StartError(self.attempts)

    async def invoke(self, target: str, *args: Any) -> Any:
        """Call a hub method and return its result; raises HubError with the server's error."""
        invocation_id = str(next(self._ids))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[invocation_id] = future
        try:
            await self._write(hubjson.encode(Invocation(target, list(args), invocation_id)), trackable=True)
            return await future
        finally:
            self._pending.pop(invocation_id, None)

    async def send(self, target: str, *args: Any) -> None:
        """Call a hub method without waiting for (or getting) a result."""
        await self._write(hubjson.encode(Invocation(target, list(args))), trackable=True)

    async def send_raw(self, text: str) -> None:
        """Send ``text`` as it is through the transport (tests use it for malformed records)."""
        if self._connection is None:
            raise RuntimeError("the client is not started")
        await self._connection.send(text)

    async def resume(self, transport: str | None = None) -> None:
        """Open a new stream on the same connection (on ``transport`` if given), replay what is unacked."""
        if self._ledger is None:
            raise RuntimeError("stateful reconnect was not negotiated")
        if self._resume_task is None or self._resume_task.done():
            if self._state is not ClientState.CONNECTED:
                raise RuntimeError(f"cannot resume a client that is {self._state.value}")
            self._state = ClientState.RESUMING
            self._resume_task = self._spawn(self._resume(transport))
        await asyncio.shield(self._resume_task)

    async def close(self) -> None:
        """Close the connection: a Close message and close frame, or a DELETE."""
        if self._state in (ClientState.CLOSED, ClientState.CLOSING):
            await self._closed.wait()
            return
        self._state = ClientState.CLOSING
        self._cancel_timers()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(*NETWORK_ERRORS, TimeoutError):
                await asyncio.wait_for(connection.stop(), 5.0)
        self._finish(None)
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    async def wait_closed(self) -> str | None:
        """Wait until the connection has closed; returns why (None for a normal close)."""
        await self._closed.wait()
        return self.close_error

    # --- start ------------------------------------------------------------------------------------

    async def _start_once(self, choose: Callable[[tuple[str, ...]], str | None]) -> None:
        self._state = ClientState.CONNECTING
        self._reader = hubjson.RecordReader(self.max_message_size)
        self._ledger = None
        loop = asyncio.get_running_loop()
        self._handshake = handshake = loop.create_future()
        self._connection = None
        self._connection = await ClientConnection.open(
            self.url, choose, self._on_text, self._on_stream_closed, stateful=self.stateful_reconnect,
            headers=self.headers,
        )
        if self._connection.stateful:
            self._ledger = Ledger()
        self._last_received = self._last_sent = loop.time()
        await self._connection.send(hubjson.encode_handshake_request())
        response = await handshake
        if response.error is not None:
            raise HubError(response.error)
        self._state = ClientState.CONNECTED
        self._arm()

    async def _abandon(self) -> None:
        connection, self._connection = self._connection, None
        self._state = ClientState.DISCONNECTED
        if connection is not None:
            with contextlib.suppress(*NETWORK_ERRORS, TimeoutError):
                await asyncio.wait_for(connection.stop(), 2.0)
        self._state = ClientState.DISCONNECTED

    # --- receiving -------------------------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        self._last_received = asyncio.get_running_loop().time()
        if not text:
            return
        try:
            records = self._reader.feed(text)
            if self._reader.pending:
                self._reader = hubjson.RecordReader(self.max_message_size)
                raise ProtocolError("a transport message ended inside a record")
            for record in records:
                self._on_record(record)
        except ProtocolError as exc:
            log.warning("connection %s: protocol error from the server: %s", self.connection_id, exc.message)
            self._fail(f"protocol error from the server: {exc.message}")

    def _on_record(self, record: str) -> None:
        handshake = self._handshake
        if handshake is not None and not handshake.done():
            handshake.set_result(hubjson.parse_handshake_response(record))
            return
        message = hubjson.parse_message(record)
        ledger = self._ledger
        if ledger is not None:
            if not ledger.accept(message):
                return
            if ledger.ack_due:
                self._schedule_ack()
        self._dispatch(message)

    def _dispatch(self, message: HubMessage) -> None:
        if isinstance(message, Invocation):
            for handler in list(self._handlers.get(message.target.lower(), ())):
                self._call(handler, message.arguments)
        elif isinstance(message, Completion):
            future = self._pending.pop(message.invocation_id, None)
            if future is not None and not future.done():
                if message.error is not None:
                    future.set_exception(HubError(message.error))
                else:
                    future.set_result(message.result)
        elif isinstance(message, Close):
            self._fail(message.error)

    def _call(self, handler: Handler, arguments: list[Any]) -> None:
        try:
            result = handler(*arguments)
        except Exception:
            log.exception("connection %s: a client method failed", self.connection_id)
            return
        if inspect.isawaitable(result):
            self._spawn(result)

    def _on_stream_closed(self, error: Exception | None) -> None:
        state = self._state
        if state is ClientState.CONNECTING:
            handshake = self._handshake
            if handshake is not None and not handshake.done():
                handshake.set_exception(error or TransportError("the stream ended before the handshake response"))
        elif state is ClientState.CONNECTED:
            if self._ledger is not None:
                log.info("connection %s: stream dropped (%r), resuming", self.connection_id, error)
                self._state = ClientState.RESUMING
                self._resume_task = self._spawn(self._resume())
            else:
                self._fail(f"the stream ended: {error}" if error else "the server ended the stream")

    # --- sending -----------------------------------------------------------------------------------

    async def _write(self, text: str, *, trackable: bool = False) -> None:
        if self._state in (ClientState.CLOSING, ClientState.CLOSED, ClientState.DISCONNECTED):
            raise ConnectionError(f"the connection is {self._state.value}")
        if trackable and self._ledger is not None:
            self._ledger.sent(text)
        if self._state is ClientState.RESUMING:
            return  # a trackable record goes out with the replay; a ping or an ack is not needed
        connection = self._connection
        assert connection is not None
        self._last_sent = asyncio.get_running_loop().time()
        try:
            await connection.send(text)
        except HttpError as exc:
            if exc.status == 404:
                self._fail(f"the server no longer knows this connection: {exc.error}")
                raise ConnectionError(self.close_error) from exc
            await self._after_send_failure(connection, exc)
        except NETWORK_ERRORS as exc:
            await self._after_send_failure(connection, exc)

    async def _after_send_failure(self, connection: ClientConnection, exc: Exception) -> None:
        if self._ledger is None:
            raise exc
        log.info("connection %s: send failed (%r), resuming", self.connection_id, exc)
        await connection.transport.abort()  # the reader notices, and the resume replays this text

    # --- stateful reconnect ------------------------------------------------------------------------

    async def _resume(self, transport: str | None = None) -> None:
        connection, ledger = self._connection, self._ledger
        assert connection is not None and ledger is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.resume_timeout
        delay = 0.05
        while True:
            try:
                await connection.reopen(transport)
                break
            except HttpError as exc:
                if exc.status in (404, 400) or loop.time() + delay > deadline:
                    self._fail(f"could not resume: {exc}")
                    raise
            except (*NETWORK_ERRORS, TimeoutError) as exc:
                if loop.time() + delay > deadline:
                    self._fail(f"could not resume: {exc!r}")
                    raise
            if self._state is not ClientState.RESUMING:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        if self._state is not ClientState.RESUMING:
            return
        self._reader = hubjson.RecordReader(self.max_message_size)
        self._state = ClientState.CONNECTED
        self._last_received = self._last_sent = loop.time()
        log.info("connection %s: resumed on %s", self.connection_id, connection.transport.name)
        if ledger.last_received:
            ledger.ack_due = True
            self._schedule_ack()
        try:
            await connection.send(ledger.replay())
        except NETWORK_ERRORS as exc:
            await connection.transport.abort()  # the new stream failed too: its reader starts another resume
            log.info("connection %s: replay failed (%r)", self.connection_id, exc)

    def _schedule_ack(self) -> None:
        if self._ack_timer is None:
            self._ack_timer = asyncio.get_running_loop().call_later(self.ack_interval, self._flush_ack)

    def _flush_ack(self) -> None:
        self._ack_timer = None
        if self._state is ClientState.RESUMING:
            self._schedule_ack()
        elif self._state is ClientState.CONNECTED and self._ledger is not None:
            ack = self._ledger.take_ack()
            if ack is not None:
                self._spawn(self._write(ack))

    # --- keep-alive -------------------------------------------------------------------------------

    def _arm(self) -> None:
        interval = min(self.keepalive_interval, self.server_timeout) / 3
        self._timer = asyncio.get_running_loop().call_later(interval, self._on_tick)

    def _on_tick(self) -> None:
        self._timer = None
        if self._state not in (ClientState.CONNECTED, ClientState.RESUMING):
            return
        now = asyncio.get_running_loop().time()
        if self._state is ClientState.CONNECTED and self._connection is not None:
            if now - self._last_received >= self.server_timeout:
                log.info("connection %s: nothing from the server for %s s", self.connection_id, self.server_timeout)
                self._spawn(self._connection.transport.abort())
            elif now - self._last_sent >= self.keepalive_interval:
                self._spawn(self._write(hubjson.PING))
        self._arm()

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._ack_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._ack_timer = None

    # --- closing -----------------------------------------------------------------------------------

    def _fail(self, error: str | None) -> None:
        """The connection ended without our asking (Close message, drop, protocol error)."""
        if self._state in (ClientState.CLOSED, ClientState.CLOSING):
            return
        connection = self._connection
        self._finish(error)
        if connection is not None:
            self._spawn(_teardown(connection))

    def _finish(self, error: str | None) -> None:
        if self._state is ClientState.CLOSED:
            return
        self._state = ClientState.CLOSED
        self.close_error = error
        self._cancel_timers()
        failure = ConnectionError(error or "the connection closed")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(failure)
        self._closed.set()
        for callback in self._close_callbacks:
            self._call(callback, [error])

    def _spawn(self, awaitable: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("connection %s: background task failed: %r", self.connection_id, task.exception())


async def _teardown(connection: ClientConnection) -> None:
    with contextlib.suppress(*NETWORK_ERRORS, TimeoutError):
        await connection.transport.abort()
        await connection.http.aclose()
