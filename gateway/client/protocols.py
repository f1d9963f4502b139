"""Callback HTTP/1.1 and WebSocket connections on asyncio Protocols, for many connections at once.

An idle connection here is only its Protocol object and its h11 or wsproto state machine: no task,
no pending future. ``gateway.client.lean`` drives the hub session over them for the load generator,
and the benchmarks' raw and Socket.IO clients use them too.

  ``HttpProtocol``  one HTTP/1.1 connection (h11): a request with a whole body, or a streamed one
  ``HttpPool``      a few keep-alive connections shared by many logical connections (negotiate, POST)
  ``WsProtocol``    one WebSocket (wsproto) delivering whole text (and, if asked, binary) messages to callbacks
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, cast

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

Headers = Iterable[tuple[str, str]]
OnBytes = Callable[[bytes], None]
OnText = Callable[[str], None]
OnEnd = Callable[[Exception | None], None]


class LeanError(Exception):
    """A connection could not be opened, or broke."""


# --- HTTP -----------------------------------------------------------------------------------------


class HttpProtocol(asyncio.Protocol):
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
    async def open(cls, host: str, port: int) -> HttpProtocol:
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
        self._idle: list[HttpProtocol] = []
        self._count = 0
        self._waiters: deque[asyncio.Future[HttpProtocol | None]] = deque()

    async def request(self, method: str, target: str, body: bytes = b"", headers: Headers = ()) -> tuple[int, bytes]:
        conn = await self._acquire()
        try:
            return await conn.request(method, target, body, headers)
        finally:
            self._release(conn)

    async def _acquire(self) -> HttpProtocol:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn
            self._count -= 1
        if self._count >= self.size:
            waiter: asyncio.Future[HttpProtocol | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            handed = await waiter
            if handed is not None:
                return handed
        self._count += 1
        try:
            return await HttpProtocol.open(self.host, self.port)
        except BaseException:
            self._count -= 1
            raise

    def _release(self, conn: HttpProtocol) -> None:
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


class WsProtocol(asyncio.Protocol):
    """One client WebSocket; whole text messages go to ``on_text``, whole binary ones to ``on_bytes``
    (ignored without it), the end to ``on_end``."""

    __slots__ = ("ws", "transport", "opened", "on_text", "on_bytes", "on_end", "_parts", "_ended", "_request")

    def __init__(self, host: str, target: str, on_text: OnText, on_end: OnEnd, on_bytes: OnBytes | None = None) -> None:
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] | None = asyncio.get_running_loop().create_future()
        self.on_text = on_text
        self.on_bytes = on_bytes
        self.on_end = on_end
        self._parts: list[Any] = []  # a fragmented message's parts: all str, or all bytes
        self._ended = False
        self._request = (host, target)

    @classmethod
    async def open(
        cls, host: str, port: int, target: str, on_text: OnText, on_end: OnEnd, on_bytes: OnBytes | None = None,
    ) -> WsProtocol:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: cls(f"{host}:{port}", target, on_text, on_end, on_bytes), host, port)
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
            elif isinstance(event, BytesMessage):
                self._binary(bytes(event.data), event.message_finished)
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

    def _binary(self, data: bytes, finished: bool) -> None:
        if self.on_bytes is None:
            return  # a text-only client ignores binary messages
        if finished and not self._parts:
            self.on_bytes(data)
            return
        self._parts.append(data)
        if finished:
            whole = b"".join(self._parts)
            self._parts = []
            self.on_bytes(whole)

    def send_text(self, text: str) -> None:
        if self._ended or self.transport is None:
            raise LeanError("the websocket is closed")
        self.transport.write(self.ws.send(TextMessage(data=text)))

    def send_bytes(self, data: bytes) -> None:
        if self._ended or self.transport is None:
            raise LeanError("the websocket is closed")
        self.transport.write(self.ws.send(BytesMessage(data=data)))

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


# --- long polling ---------------------------------------------------------------------------------


class Poller:
    """Long polls on one keep-alive connection from callbacks: each answer's body goes to ``on_body``,
    then, while ``active()``, the next poll goes out; the end (None, or what broke it) goes to ``on_end``."""

    __slots__ = ("stream", "target", "on_body", "on_end", "active")

    def __init__(
        self, stream: HttpProtocol, target: Callable[[], str], on_body: OnBytes, on_end: OnEnd,
        active: Callable[[], bool],
    ) -> None:
        self.stream = stream
        self.target = target
        self.on_body = on_body
        self.on_end = on_end
        self.active = active

    def poll(self) -> None:
        if not self.stream.reusable:
            self.on_end(LeanError("the poll connection closed"))
            return
        self.stream.request("GET", self.target()).add_done_callback(self._polled)

    def _polled(self, future: asyncio.Future[tuple[int, bytes]]) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            self.on_end(error if isinstance(error, Exception) else None)
            return
        status, body = future.result()
        if status != 200:
            self.on_end(LeanError(f"poll ended with {status}"))
            return
        if body:
            self.on_body(body)
        if self.active():
            self.poll()
