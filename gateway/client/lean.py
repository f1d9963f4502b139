"""A lean client for many connections at once: asyncio Protocols driving h11 and wsproto.

The streaming client (``HubClient``) runs a reader task per stream; that is the right shape for an
application but too heavy for a load generator holding 19,000 idle connections. Here an idle
connection is only its Protocol object and its h11 or wsproto state machine: no task, no pending
future. Records are parsed with ``gateway.protocol`` (the hub codec, the SSE and ForeverFrame
parsers), so the wire format has one implementation.

Layers:
  ``HttpConnection``  one HTTP/1.1 connection (h11): a request with a whole body, or a streamed one
  ``HttpPool``        a few keep-alive connections shared by many logical connections (negotiate, POST)
  ``WsConnection``    one WebSocket (wsproto) delivering whole text messages to a callback
  ``HubConnection``   the hub protocol over one of the four transports, with invocations and pings
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, cast

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from ..protocol import hubjson
from ..protocol.framing import ForeverFrameParser, SSEParser
from ..protocol.messages import Close, Completion, Invocation
from ..protocol.negotiate import parse_negotiate_response

Headers = Iterable[tuple[str, str]]
OnBytes = Callable[[bytes], None]
OnText = Callable[[str], None]
OnEnd = Callable[[Exception | None], None]


class LeanError(Exception):
    """A connection could not be opened, or broke."""


# --- HTTP -----------------------------------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request at a time; reusable when both sides finished cleanly."""

    __slots__ = ("host", "h11", "transport", "lost", "_waiter", "_status", "_chunks", "_on_body", "_on_end")

    def __init__(self, host: str) -> None:
        self.host = host
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._status = 0
        self._chunks: list[bytes] = []
        self._on_body: OnBytes | None = None
        self._on_end: OnEnd | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: cls(f"{host}:{port}"), host, port)
        return conn

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.h11.receive_data(data)
            self._events()
        except h11.RemoteProtocolError as exc:
            self._fail(LeanError(f"bad HTTP from the server: {exc}"))

    def eof_received(self) -> bool | None:
        with contextlib.suppress(h11.RemoteProtocolError):
            self.h11.receive_data(b"")
            self._events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(exc or LeanError("connection closed"))

    # requests
    @property
    def reusable(self) -> bool:
        return not self.lost and self._waiter is None and self._on_end is None and self.h11.our_state is h11.IDLE

    def request(
        self, method: str, target: str, body: bytes = b"", headers: Headers = (),
        *, on_body: OnBytes | None = None, on_end: OnEnd | None = None,
    ) -> asyncio.Future[tuple[int, bytes]]:
        """Send a request. Without ``on_body`` the future gets (status, whole body) at its end; with it,
        (status, b"") as soon as the head arrives, then each body chunk goes to ``on_body`` and the end
        (None, or what broke it) to ``on_end``."""
        if self.transport is None or self.lost:
            raise LeanError("the connection is closed")
        if self.h11.our_state is not h11.IDLE:
            raise LeanError("a request is already in progress on this connection")
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._status = 0
        self._chunks = []
        self._on_body, self._on_end = on_body, on_end
        head = [("host", self.host), *headers]
        if body or method in ("POST", "PUT"):
            head.append(("content-length", str(len(body))))
        out = self.h11.send(h11.Request(method=method, target=target, headers=head)) or b""
        if body:
            out += self.h11.send(h11.Data(data=body)) or b""
        out += self.h11.send(h11.EndOfMessage()) or b""
        self.transport.write(out)
        return self._waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _events(self) -> None:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self._status = event.status_code
                if self._on_body is not None and self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result((self._status, b""))
            elif isinstance(event, h11.Data):
                if self._on_body is not None:
                    self._on_body(bytes(event.data))
                else:
                    self._chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._finish()
            elif isinstance(event, h11.ConnectionClosed):
                self._fail(LeanError("connection closed"))
                return

    def _finish(self) -> None:
        waiter, on_end = self._waiter, self._on_end
        self._waiter = self._on_end = self._on_body = None
        body = b"".join(self._chunks)
        self._chunks = []
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        elif self.transport is not None:
            self.transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, body))
        if on_end is not None:
            on_end(None)

    def _fail(self, exc: Exception) -> None:
        waiter, on_end = self._waiter, self._on_end
        self._waiter = self._on_end = self._on_body = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc if isinstance(exc, LeanError) else LeanError(str(exc)))
        if on_end is not None:
            on_end(exc)
        if self.transport is not None and not self.lost:
            self.transport.close()


class HttpPool:
    """At most ``size`` keep-alive connections to one server, shared by many callers."""

    def __init__(self, host: str, port: int, size: int = 4) -> None:
        self.host = host
        self.port = port
        self.size = size
        self._idle: list[HttpConnection] = []
        self._count = 0
        self._waiters: deque[asyncio.Future[HttpConnection | None]] = deque()

    async def request(self, method: str, target: str, body: bytes = b"", headers: Headers = ()) -> tuple[int, bytes]:
        conn = await self._acquire()
        try:
            return await conn.request(method, target, body, headers)
        finally:
            self._release(conn)

    async def _acquire(self) -> HttpConnection:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn
            self._count -= 1
        if self._count >= self.size:
            waiter: asyncio.Future[HttpConnection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            handed = await waiter
            if handed is not None:
                return handed
        self._count += 1
        try:
            return await HttpConnection.open(self.host, self.port)
        except BaseException:
            self._count -= 1
            raise

    def _release(self, conn: HttpConnection) -> None:
        usable = conn.reusable
        if not usable:
            conn.close()
            self._count -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            waiter.set_result(conn if usable else None)  # None: the waiter opens its own connection
            return
        if usable:
            self._idle.append(conn)

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        self._count = 0


# --- WebSocket ------------------------------------------------------------------------------------


class WsConnection(asyncio.Protocol):
    """One client WebSocket; whole text messages go to ``on_text``, the end to ``on_end``."""

    __slots__ = ("ws", "transport", "opened", "on_text", "on_end", "_parts", "_ended", "_request")

    def __init__(self, host: str, target: str, on_text: OnText, on_end: OnEnd) -> None:
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] | None = asyncio.get_running_loop().create_future()
        self.on_text = on_text
        self.on_end = on_end
        self._parts: list[str] = []
        self._ended = False
        self._request = (host, target)

    @classmethod
    async def open(cls, host: str, port: int, target: str, on_text: OnText, on_end: OnEnd) -> WsConnection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: cls(f"{host}:{port}", target, on_text, on_end), host, port)
        opened = conn.opened
        if opened is None:
            raise LeanError("the websocket closed before it opened")
        try:
            await opened
        finally:
            conn.opened = None  # an idle connection keeps no future
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        host, target = self._request
        self.transport.write(self.ws.send(Request(host=host, target=target)))

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        out = b""
        for event in ws.events():
            if isinstance(event, TextMessage):
                if event.message_finished and not self._parts:
                    self.on_text(event.data)
                else:
                    self._parts.append(event.data)
                    if event.message_finished:
                        text = "".join(self._parts)
                        self._parts = []
                        self.on_text(text)
            elif isinstance(event, Ping):
                out += ws.send(event.response())
            elif isinstance(event, AcceptConnection):
                if self.opened is not None and not self.opened.done():
                    self.opened.set_result(None)
            elif isinstance(event, RejectConnection | RejectData):
                self._end(LeanError(f"websocket upgrade refused: {getattr(event, 'status_code', '')}"))
            elif isinstance(event, CloseConnection):
                with contextlib.suppress(Exception):
                    out += ws.send(event.response())
                self._end(None)
        if out and self.transport is not None:
            self.transport.write(out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc or LeanError("connection lost"))

    def send_text(self, text: str) -> None:
        if self._ended or self.transport is None:
            raise LeanError("the websocket is closed")
        self.transport.write(self.ws.send(TextMessage(data=text)))

    def close(self) -> None:
        if self.transport is not None and not self._ended:
            with contextlib.suppress(Exception):
                self.transport.write(self.ws.send(CloseConnection(code=1000)))
            self.transport.close()

    def _end(self, exc: Exception | None) -> None:
        if self.opened is not None and not self.opened.done():
            self.opened.set_exception(exc or LeanError("websocket closed before it opened"))
        if self._ended:
            return
        self._ended = True
        if self.transport is not None:
            self.transport.close()
        self.on_end(exc)


# --- Hub connections ------------------------------------------------------------------------------

OnInvocation = Callable[[str, list[Any]], None]
_ids = itertools.count(1)


class HubConnection:
    """The hub protocol over one transport. Subclasses open the stream and carry text both ways.

    ``on_invocation(target, arguments)`` gets the server's calls; ``alive`` turns False when the
    connection ends. ``pings_received`` counts the server's keep-alives.
    """

    transport_name: ClassVar[str] = ""
    __slots__ = (
        "base", "pool", "on_invocation", "alive", "pings_received", "token", "_reader", "_pending",
        "_handshake",
    )

    def __init__(self, base: str, pool: HttpPool, on_invocation: OnInvocation | None = None) -> None:
        self.base = base  # the hub's path, e.g. /hubs/echo
        self.pool = pool
        self.on_invocation = on_invocation
        self.alive = False
        self.pings_received = 0
        self.token = ""
        self._reader = hubjson.RecordReader(1 << 20)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._handshake: asyncio.Future[None] | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        """Negotiate, open the stream, and complete the handshake (confirmed by its response)."""
        status, body = await self.pool.request("POST", f"{self.base}/negotiate?negotiateVersion=1")
        if status != 200:
            raise LeanError(f"negotiate failed with {status}: {body[:200]!r}")
        self.token = parse_negotiate_response(body).token
        self._handshake = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(timeout):
            await self._open()
            self.alive = True
            self._send(hubjson.encode_handshake_request())
            await self._handshake
        self._handshake = None

    async def invoke(self, target: str, *args: Any) -> Any:
        """Call a hub method and return its result (raises LeanError on an error completion)."""
        invocation_id = str(next(_ids))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[invocation_id] = future
        try:
            self._send(hubjson.encode(Invocation(target, list(args), invocation_id)))
            return await future
        finally:
            self._pending.pop(invocation_id, None)

    def send(self, target: str, *args: Any) -> None:
        """Call a hub method without waiting for (or asking for) a result."""
        self._send(hubjson.encode(Invocation(target, list(args))))

    def ping(self) -> None:
        """The client's keep-alive (the server closes a connection silent for 30 s)."""
        if self.alive:
            self._send(hubjson.PING)

    def close(self) -> None:
        self.alive = False

    # subclasses
    async def _open(self) -> None:
        raise NotImplementedError

    def _send(self, text: str) -> None:
        raise NotImplementedError

    # shared
    def _query(self) -> str:
        return f"{self.base}?id={self.token}"

    def _on_text(self, text: str) -> None:
        for record in self._reader.feed(text):
            self._record(record)

    def _record(self, record: str) -> None:
        if self._handshake is not None:
            error = hubjson.parse_handshake_response(record).error
            if not self._handshake.done():
                if error is None:
                    self._handshake.set_result(None)
                else:
                    self._handshake.set_exception(LeanError(f"handshake refused: {error}"))
            return
        if record == hubjson.PING[:-1]:
            self.pings_received += 1
            return
        message = hubjson.parse_message(record)
        if isinstance(message, Invocation):
            if self.on_invocation is not None:
                self.on_invocation(message.target, message.arguments)
        elif isinstance(message, Completion):
            future = self._pending.get(message.invocation_id)
            if future is not None and not future.done():
                if message.error is not None:
                    future.set_exception(LeanError(message.error))
                else:
                    future.set_result(message.result)
        elif isinstance(message, Close):
            self._ended(LeanError(f"closed by the server: {message.error}"))

    def _ended(self, exc: Exception | None) -> None:
        if not self.alive and self._handshake is None:
            return
        self.alive = False
        error = exc or LeanError("the connection ended")
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(error)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)


class WebSocketsHubConnection(HubConnection):
    transport_name = "WebSockets"
    __slots__ = ("ws",)

    async def _open(self) -> None:
        self.ws = await WsConnection.open(self.pool.host, self.pool.port, self._query(), self._on_text, self._ended)

    def _send(self, text: str) -> None:
        self.ws.send_text(text)

    def close(self) -> None:
        super().close()
        with contextlib.suppress(AttributeError):
            self.ws.close()


class PostingHubConnection(HubConnection):
    """SSE, ForeverFrame and LongPolling send with POSTs over the shared pool, one at a time, batched."""

    __slots__ = ("stream", "_outbox", "_posting")

    def __init__(self, base: str, pool: HttpPool, on_invocation: OnInvocation | None = None) -> None:
        super().__init__(base, pool, on_invocation)
        self.stream: HttpConnection | None = None
        self._outbox: list[str] = []
        self._posting = False

    def _send(self, text: str) -> None:
        self._outbox.append(text)
        if not self._posting:
            self._posting = True
            asyncio.ensure_future(self._post())

    async def _post(self) -> None:
        try:
            while self._outbox and self.alive:
                body = "".join(self._outbox).encode()
                self._outbox = []
                status, answer = await self.pool.request(
                    "POST", self._query(), body, [("content-type", "text/plain;charset=UTF-8")])
                if status != 200:
                    self._ended(LeanError(f"POST failed with {status}: {answer[:200]!r}"))
        except LeanError as exc:
            self._ended(exc)
        finally:
            self._posting = False

    async def _open_stream(self, target: str, headers: Headers, on_body: OnBytes) -> None:
        stream = await HttpConnection.open(self.pool.host, self.pool.port)
        self.stream = stream
        status, _ = await stream.request("GET", target, b"", headers, on_body=on_body, on_end=self._stream_ended)
        if status != 200:
            raise LeanError(f"stream refused with {status}")

    def _stream_ended(self, exc: Exception | None) -> None:
        self._ended(exc or LeanError("the server ended the stream"))

    def close(self) -> None:
        super().close()
        if self.stream is not None:
            self.stream.close()


class ServerSentEventsHubConnection(PostingHubConnection):
    transport_name = "ServerSentEvents"
    __slots__ = ("_parser",)

    async def _open(self) -> None:
        self._parser = SSEParser()
        await self._open_stream(self._query(), [("accept", "text/event-stream")], self._on_bytes)

    def _on_bytes(self, data: bytes) -> None:
        for event in self._parser.feed(data):
            self._on_text(event)


class ForeverFrameHubConnection(PostingHubConnection):
    transport_name = "ForeverFrame"
    __slots__ = ("_parser",)

    async def _open(self) -> None:
        self._parser = ForeverFrameParser()
        origin = f"http://{self.pool.host}:{self.pool.port}"
        target = f"{self._query()}&transport=ForeverFrame&origin={origin}&frame=f"
        await self._open_stream(target, [("accept", "text/html")], self._on_bytes)

    def _on_bytes(self, data: bytes) -> None:
        for payload in self._parser.feed(data):
            if payload is None:
                self._ended(LeanError("the server ended the frame"))
            else:
                self._on_text(payload)


class LongPollingHubConnection(PostingHubConnection):
    """Polls on its own keep-alive connection: each answer is handled in a callback that polls again."""

    transport_name = "LongPolling"
    __slots__ = ()

    async def _open(self) -> None:
        stream = await HttpConnection.open(self.pool.host, self.pool.port)
        self.stream = stream
        status, _ = await stream.request("GET", self._query())  # the first poll answers at once
        if status != 200:
            raise LeanError(f"first poll failed with {status}")
        self._poll()

    def _poll(self) -> None:
        stream = self.stream
        if stream is None or not stream.reusable:
            self._ended(LeanError("the poll connection closed"))
            return
        stream.request("GET", self._query()).add_done_callback(self._polled)

    def _polled(self, future: asyncio.Future[tuple[int, bytes]]) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            self._ended(error if isinstance(error, Exception) else None)
            return
        status, body = future.result()
        if status != 200:
            self._ended(LeanError(f"poll ended with {status}"))
            return
        if body:
            self._on_text(body.decode())
        if self.alive or self._handshake is not None:
            self._poll()


HUB_CONNECTIONS: dict[str, type[HubConnection]] = {
    c.transport_name: c for c in (
        WebSocketsHubConnection, ServerSentEventsHubConnection, ForeverFrameHubConnection, LongPollingHubConnection,
    )
}
"""The lean hub connection of each transport, by the transport's name."""
