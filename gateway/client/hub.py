"""``HubClient``: the application's asyncio driver of a ``ClientSession`` over any transport.

Theory of operation
-------------------
The protocol (handshake, invocation ids, the sequence ledger, keep-alive and ack deadlines) is the
sans-IO ``gateway.protocol.session.ClientSession``; this module does the I/O around it. ``start``
negotiates and opens a transport, sends the session's handshake and counts the transport as started
only when the handshake response has come back through it, within ``start_timeout``; otherwise the
next transport is tried with a fresh negotiate. Each transport runs one reader task per stream and
reports text and the stream's end through two callbacks; one timer handle, set at the session's
deadline, does the rest, so an idle connection costs one task.

Under stateful reconnect a dropped stream is resumed on the same token; the session's replay is
the first thing written on the new stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import h11

from ..protocol.errors import ProtocolError
from ..protocol.hubprotocols import PROTOCOLS, HubProtocol
from ..protocol.ledger import Ledger
from ..protocol.messages import CancelInvocation, Completion, HandshakeResponse, Invocation, StreamItem
from ..protocol.session import UNWRITABLE, ClientSession, ClientState
from . import tracing
from .calls import Calls, route
from .connection import BY_NAME, ClientConnection, NoTransport
from .http import HttpError
from .transport import Transport, TransportError

log = logging.getLogger("gateway.client")

Handler = Callable[..., Any]
NETWORK_ERRORS = (OSError, TransportError, HttpError, h11.ProtocolError, EOFError)
UPLOAD_BATCH = 64 * 1024
CLOSED_BY_POST = frozenset({400, 413})
"""A POST answered with one of these made the server close the connection; its error body says why."""
"""Characters of a client stream's items written together at most (while one write is in flight, items gather)."""
Uploads = list[tuple[str, Any]]


class HubError(Exception):
    """The server's error for an invocation, or its refusal of the handshake."""


class StartError(ConnectionError):
    """No transport could be started; ``attempts`` says why each failed."""

    def __init__(self, attempts: list[tuple[str, str]]) -> None:
        self.attempts = attempts
        detail = "; ".join(f"{name}: {why}" for name, why in attempts) or "the server offers no usable transport"
        super().__init__(f"could not start a connection ({detail})")


class HubClient:
    """A client of one hub, e.g. ``HubClient("http://127.0.0.1:8000/hubs/echo", transport="LongPolling")``.

    ``transport`` is a name or a list of names in the order to try; by default the server's order.
    ``protocol`` is the hub protocol, ``"json"`` or ``"messagepack"``; MessagePack is Binary, so it uses
    WebSockets and LongPolling only.
    """

    __slots__ = (
        "url", "headers", "stateful_reconnect", "start_timeout", "resume_timeout", "attempts", "_choices",
        "_session", "_connection", "_handlers", "_close_callbacks", "_calls", "_handshake", "_timer", "_resume_task",
        "_tasks", "_closed",
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
        protocol: str = "json",
    ) -> None:
        choices = [transport] if isinstance(transport, str) else list(transport) if transport is not None else None
        unknown = [name for name in choices or () if name not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown transports {unknown}; known: {list(BY_NAME)}")
        self.url = url
        self.headers = tuple((headers or {}).items())  # sent with negotiate only: the token does the rest
        self.stateful_reconnect = stateful_reconnect
        self.start_timeout = start_timeout
        self.resume_timeout = resume_timeout
        self.attempts: list[tuple[str, str]] = []
        self._choices = choices
        self._session = ClientSession(
            keepalive_interval=keepalive_interval, server_timeout=server_timeout, ack_interval=ack_interval,
            max_message_size=max_message_size, protocol=_hub_protocol(protocol),
        )
        self._connection: ClientConnection | None = None
        self._handlers: dict[str, list[Handler]] = {}
        self._close_callbacks: list[Callable[[str | None], Any]] = []
        self._calls = Calls(HubError)
        self._handshake: asyncio.Future[HandshakeResponse] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._resume_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()

    # --- public -------------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self._session.state

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
    def _ledger(self) -> Ledger | None:
        return self._session.ledger

    @property
    def connection_id(self) -> str | None:
        return self._connection.connection_id if self._connection else None

    def on(self, name: str, handler: Handler) -> None:
        """Call ``handler(*arguments)`` (sync or async) when the server invokes ``name``.

        When the server awaits a client result, the handler's return value (awaited if it is awaitable) is
        the answer, and an exception it raises is the error; with several handlers, the last one answers.
        """
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
        if self.state is not ClientState.DISCONNECTED:
            raise RuntimeError(f"cannot start a client that is {self.state.value}")
        tried: list[str] = []

        binary = self._session.protocol.transfer_format == "Binary"

        def choose(offered: tuple[str, ...]) -> str | None:
            order = self._choices if self._choices is not None else [t for t in offered if t in BY_NAME]
            usable = [t for t in order if t in offered and t not in tried and (BY_NAME[t].binary or not binary)]
            name = usable[0] if usable else None
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
                self._attempt_failed(name, exc)
                await self._abandon()
                if isinstance(exc, HubError) or name == "negotiate":
                    break
        self._session.finish(None)
        self._closed.set()
        raise StartError(self.attempts)

    async def invoke(self, target: str, *args: Any) -> Any:
        """Call a hub method and return its result; raises HubError with the server's error.

        An argument that is an async iterable is sent as a client stream (its items, then its end).
        """
        arguments, uploads = self._split(args)
        stream_ids = [stream_id for stream_id, _ in uploads] or None
        invocation_id, text = self._session.invocation(target, arguments, self._now(), stream_ids, tracing.headers())
        future = self._calls.expect(invocation_id)
        try:
            await self._write(text)
            self._upload(uploads)
            return await future
        finally:
            self._calls.forget(invocation_id)
            if future.done() and not future.cancelled():
                future.exception()  # a write that failed closed the connection, which failed this call: read here


    async def send(self, target: str, *args: Any) -> None:
        """Call a hub method without waiting for (or getting) a result; async iterables go as client streams."""
        arguments, uploads = self._split(args)
        stream_ids = [stream_id for stream_id, _ in uploads] or None
        await self._write(self._session.message(target, arguments, self._now(), stream_ids, tracing.headers()))
        self._upload(uploads)

    async def stream(self, target: str, *args: Any) -> AsyncIterator[Any]:
        """A server stream: ``async for item in client.stream("Counter", 5, 10)``; raises HubError with the
        server's error. Leaving the loop early (best under ``contextlib.aclosing``) cancels it on the server."""
        arguments, uploads = self._split(args)
        stream_ids = [stream_id for stream_id, _ in uploads] or None
        invocation_id, text = self._session.stream_invocation(
            target, arguments, self._now(), stream_ids, tracing.headers())
        queue = self._calls.expect_stream(invocation_id)
        ended = False
        try:
            await self._write(text)
            self._upload(uploads)
            while True:
                kind, value = await queue.get()
                if kind == "item":
                    yield value
                    continue
                ended = True
                if kind == "error":
                    raise value
                return
        finally:
            self._calls.forget(invocation_id)
            if not ended:
                await self._send_quietly(CancelInvocation(invocation_id))

    async def send_raw(self, text: str | bytes) -> None:
        """Send ``text`` as it is through the transport (tests use it for malformed records).

        Bytes go out as they are, unnumbered: a test's malformed MessagePack frame, say.
        """
        if self._connection is None:
            raise RuntimeError("the client is not started")
        await self._connection.send(self._session.raw(text, self._now()) if isinstance(text, str) else text)

    async def resume(self, transport: str | None = None) -> None:
        """Open a new stream on the same connection (on ``transport`` if given), replay what is unacked."""
        if self._session.ledger is None:
            raise RuntimeError("stateful reconnect was not negotiated")
        if self._resume_task is None or self._resume_task.done():
            if not self._session.dropped():
                raise RuntimeError(f"cannot resume a client that is {self.state.value}")
            self._resume_task = self._spawn(self._resume(transport))
        await asyncio.shield(self._resume_task)

    async def close(self) -> None:
        """Close the connection: a Close message and close frame, or a DELETE."""
        if self.state in (ClientState.CLOSED, ClientState.CLOSING):
            await self._closed.wait()
            return
        self._session.close()
        self._cancel_timer()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(*NETWORK_ERRORS, TimeoutError):
                await asyncio.wait_for(connection.stop(self._session.close_record()), 5.0)
        self._finish(None)
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    @property
    def close_error(self) -> str | None:
        """Why the connection closed (None for a normal close, or while open)."""
        return self._session.close_error

    async def wait_closed(self) -> str | None:
        """Wait until the connection has closed; returns why (None for a normal close)."""
        await self._closed.wait()
        return self.close_error

    # --- start ------------------------------------------------------------------------------------

    async def _start_once(self, choose: Callable[[tuple[str, ...]], str | None]) -> None:
        session = self._session
        session.start()
        self._handshake = handshake = asyncio.get_running_loop().create_future()
        self._connection = None
        self._connection = await ClientConnection.open(
            self.url, choose, self._on_text, self._on_stream_closed, stateful=self.stateful_reconnect,
            headers=self.headers,
        )
        await self._connection.send(session.handshake(self._now(), stateful=self._connection.stateful))
        response = await handshake
        if response.error is not None:
            raise HubError(response.error)
        self._arm()

    def _attempt_failed(self, name: str, exc: BaseException) -> None:
        timeout = isinstance(exc, TimeoutError)
        why = f"not started within {self.start_timeout} s" if timeout else str(exc) or repr(exc)
        log.info("%s failed to start: %s", name, why)
        self.attempts.append((name, why))

    async def _abandon(self) -> None:
        connection, self._connection = self._connection, None
        if self.state in (ClientState.CONNECTING, ClientState.CONNECTED):
            self._session.abandon()
        if connection is not None:
            with contextlib.suppress(*NETWORK_ERRORS, TimeoutError):
                await asyncio.wait_for(connection.stop(), 2.0)

    # --- receiving -------------------------------------------------------------------------------

    def _on_text(self, text: str | bytes) -> None:
        try:
            incoming = self._session.receive(text, self._now())
        except ProtocolError as exc:
            log.warning("connection %s: protocol error from the server: %s", self.connection_id, exc.message)
            self._fail(f"protocol error from the server: {exc.message}")
            return
        handshake = self._handshake
        if incoming.handshake is not None and handshake is not None and not handshake.done():
            handshake.set_result(incoming.handshake)
        if incoming.messages:
            route(incoming.messages, self._calls, self._invoked, self._fail, self._requested)
            self._arm()  # an ack may be due before the timer

    def _invoked(self, target: str, arguments: list[Any]) -> None:
        for handler in list(self._handlers.get(target.lower(), ())):
            self._call(handler, arguments)

    def _requested(self, message: Invocation) -> None:
        """The server awaits a client result: the handlers answer it."""
        self._spawn(self._answer(message, list(self._handlers.get(message.target.lower(), ()))))

    async def _answer(self, message: Invocation, handlers: list[Handler]) -> None:
        assert message.invocation_id is not None
        answer = Completion(message.invocation_id, error="Client didn't provide a result.")
        try:
            for handler in handlers:
                result = handler(*message.arguments)
                if inspect.isawaitable(result):
                    result = await result
                answer = Completion(message.invocation_id, result, has_result=True)
        except Exception as exc:
            log.info("connection %s: a client method failed: %r", self.connection_id, exc)
            answer = Completion(message.invocation_id, error=str(exc) or type(exc).__name__)
        if not await self._send_quietly(answer):
            await self._send_quietly(Completion(message.invocation_id, error="The client's result is not JSON."))

    def _call(self, handler: Handler, arguments: list[Any]) -> None:
        try:
            result = handler(*arguments)
        except Exception:
            log.exception("connection %s: a client method failed", self.connection_id)
            return
        if inspect.isawaitable(result):
            self._spawn(result)

    def _on_stream_closed(self, error: Exception | None) -> None:
        state = self.state
        if state is ClientState.CONNECTING:
            handshake = self._handshake
            if handshake is not None and not handshake.done():
                handshake.set_exception(error or TransportError("the stream ended before the handshake response"))
        elif state is ClientState.CONNECTED:
            if self._session.dropped():
                log.info("connection %s: stream dropped (%r), resuming", self.connection_id, error)
                self._resume_task = self._spawn(self._resume())
            else:
                self._fail(f"the stream ended: {error}" if error else "the server ended the stream")

    # --- sending -----------------------------------------------------------------------------------

    def _split(self, args: tuple[Any, ...]) -> tuple[list[Any], Uploads]:
        """The arguments, apart from the async iterables among them: those go as client streams, with new ids."""
        arguments: list[Any] = []
        uploads: Uploads = []
        for arg in args:
            if hasattr(arg, "__aiter__"):
                uploads.append((self._session.new_id(), arg))
            else:
                arguments.append(arg)
        return arguments, uploads

    def _upload(self, uploads: Uploads) -> None:
        for stream_id, source in uploads:
            self._spawn(self._pump(stream_id, source))

    async def _pump(self, stream_id: str, source: Any) -> None:
        """Send a client stream's items, gathered while a write is in flight, then its Completion."""
        error: str | None = None
        batch: list[str | bytes] = []
        size = 0
        writing: asyncio.Task[None] | None = None
        try:
            async for item in source:
                record = self._session.send(StreamItem(stream_id, item), self._now())
                batch.append(record)
                size += len(record)
                if writing is None or writing.done() or size > UPLOAD_BATCH:
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(self._write(_join(batch)))
                    batch, size = [], 0
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        if writing is not None:
            with contextlib.suppress(*NETWORK_ERRORS, ConnectionError):
                await writing
        batch.append(self._session.send(Completion(stream_id, error=error), self._now()))
        with contextlib.suppress(*NETWORK_ERRORS, ConnectionError):
            await self._write(_join(batch))

    async def _send_quietly(self, message: Completion | CancelInvocation) -> bool:
        """Send ``message`` unless the connection is over; False if it cannot be encoded."""
        if self.state in UNWRITABLE:
            return True
        try:
            record = self._session.send(message, self._now())
        except (TypeError, ValueError):
            return False
        with contextlib.suppress(*NETWORK_ERRORS, ConnectionError):
            await self._write(record)
        return True

    async def _write(self, text: str | bytes) -> None:
        """Write what the session produced ("": nothing to write now, e.g. while resuming)."""
        connection = self._connection
        if not text or connection is None:
            return
        try:
            await connection.send(text)
        except HttpError as exc:
            if exc.status == 404:
                self._fail(f"the server no longer knows this connection: {exc.error}")
                raise ConnectionError(self.close_error) from exc
            if exc.status in CLOSED_BY_POST:  # the poll may never carry the Close message: this is the reason
                self._fail(exc.error or str(exc))
                raise ConnectionError(self.close_error) from exc
            await self._after_send_failure(connection, exc)
        except NETWORK_ERRORS as exc:
            await self._after_send_failure(connection, exc)

    async def _after_send_failure(self, connection: ClientConnection, exc: Exception) -> None:
        if self._session.ledger is None:
            raise exc
        log.info("connection %s: send failed (%r), resuming", self.connection_id, exc)
        await connection.transport.abort()  # the reader notices, and the resume replays this text

    # --- stateful reconnect ------------------------------------------------------------------------

    async def _resume(self, transport: str | None = None) -> None:
        connection = self._connection
        assert connection is not None
        if not await self._reopen(connection, transport) or self.state is not ClientState.RESUMING:
            return
        replay = self._session.resumed(self._now())
        log.info("connection %s: resumed on %s", self.connection_id, connection.transport.name)
        self._arm()
        try:
            await connection.send(replay)
        except NETWORK_ERRORS as exc:
            await connection.transport.abort()  # the new stream failed too: its reader starts another resume
            log.info("connection %s: replay failed (%r)", self.connection_id, exc)

    async def _reopen(self, connection: ClientConnection, transport: str | None) -> bool:
        """A new stream on the token, retried with backoff until ``resume_timeout``; False if given up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.resume_timeout
        delay = 0.05
        while True:
            try:
                await connection.reopen(transport)
                return True
            except HttpError as exc:
                if exc.status in (404, 400) or loop.time() + delay > deadline:
                    self._fail(f"could not resume: {exc}")
                    raise
            except (*NETWORK_ERRORS, TimeoutError) as exc:
                if loop.time() + delay > deadline:
                    self._fail(f"could not resume: {exc!r}")
                    raise
            if self.state is not ClientState.RESUMING:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # --- time -------------------------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _arm(self) -> None:
        """Set the timer at the session's deadline, unless it is already set no later."""
        deadline = self._session.deadline()
        timer = self._timer
        if deadline == math.inf or (timer is not None and timer.when() <= deadline):
            return
        if timer is not None:
            timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(deadline, self._on_tick)

    def _on_tick(self) -> None:
        self._timer = None
        text, gone = self._session.tick(self._now())
        connection = self._connection
        if gone is not None and connection is not None:
            log.info("connection %s: %s", self.connection_id, gone)
            self._spawn(connection.transport.abort())
        elif text:
            self._spawn(self._write(text))
        self._arm()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- closing -----------------------------------------------------------------------------------

    def _fail(self, error: str | None) -> None:
        """The connection ended without our asking (Close message, drop, protocol error)."""
        if self.state in (ClientState.CLOSED, ClientState.CLOSING):
            return
        connection = self._connection
        self._finish(error)
        if connection is not None:
            self._spawn(_teardown(connection))

    def _finish(self, error: str | None) -> None:
        if not self._session.finish(error):
            return
        self._cancel_timer()
        failure = ConnectionError(error or "the connection closed")
        self._calls.fail(failure)
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


def _hub_protocol(name: str) -> HubProtocol[Any]:
    protocol = PROTOCOLS.get(name)
    if protocol is None:
        raise ValueError(f"unknown hub protocol {name!r}; known: {list(PROTOCOLS)}")
    return protocol


async def _teardown(connection: ClientConnection) -> None:
    with contextlib.suppress(*NETWORK_ERRORS, TimeoutError):
        await connection.transport.abort()
        await connection.http.aclose()


def _join(records: list[str | bytes]) -> str | bytes:
    """Records of one protocol as one write: text on JSON, bytes on MessagePack."""
    if records and isinstance(records[0], bytes):
        return b"".join(r for r in records if isinstance(r, bytes))
    return "".join(r for r in records if isinstance(r, str))
