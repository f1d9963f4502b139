"""A minimal HTTP/1.1 client: h11 over asyncio streams, with keep-alive reuse of one idle connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import h11

Headers = Iterable[tuple[str, str]]
READ_SIZE = 65536
IDLE_REUSE = 4.0
"""Seconds an idle connection is reused for; below uvicorn's default keep-alive timeout of 5 s."""


class HttpError(Exception):
    """A response with an unexpected status; ``error`` is the ``{"error": ...}`` of its body, if any."""

    def __init__(self, status: int, body: bytes, what: str = "request") -> None:
        self.status = status
        self.body = body
        self.error = _error_of(body)
        super().__init__(f"{what} failed with {status}: {self.error or body[:200]!r}")


def _error_of(body: bytes) -> str | None:
    with contextlib.suppress(ValueError):
        value = json.loads(body)
        error = value.get("error") if isinstance(value, dict) else None
        if isinstance(error, str):
            return error
    return None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where to connect: scheme, host and port of a URL, and its path and query."""

    secure: bool
    host: str
    port: int
    path: str
    query: str

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        secure = parts.scheme in ("https", "wss")
        port = parts.port or (443 if secure else 80)
        return cls(secure, parts.hostname, port, parts.path.rstrip("/") or "/", parts.query)

    @property
    def host_header(self) -> str:
        default = 443 if self.secure else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    @property
    def http_origin(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host_header}"

    def target(self, suffix: str = "", /, **params: str) -> str:
        """The request target: path plus ``suffix``, and the URL's own query followed by ``params``."""
        query = "&".join(filter(None, [self.query, *(f"{k}={quote(v, safe='')}" for k, v in params.items())]))
        return f"{self.path}{suffix}" + (f"?{query}" if query else "")


async def open_stream(origin: Origin) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = ssl.create_default_context() if origin.secure else None
    return await asyncio.open_connection(origin.host, origin.port, ssl=context)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        return next((v.decode("latin-1") for k, v in self.headers if k == key), None)


class HttpConnection:
    """One HTTP/1.1 connection; requests on it run one after the other."""

    __slots__ = ("origin", "_reader", "_writer", "_h11", "idle_since")

    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.origin = origin
        self._reader = reader
        self._writer = writer
        self._h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    @classmethod
    async def open(cls, origin: Origin) -> HttpConnection:
        return cls(origin, *await open_stream(origin))

    async def start(self, method: str, target: str, headers: Headers = (), body: bytes = b"") -> Response:
        """Send a request and read the response head; read the body with ``chunks`` or ``read``."""
        all_headers = [("Host", self.origin.host_header), ("Content-Length", str(len(body))), *headers]
        data = self._h11.send(h11.Request(method=method, target=target, headers=all_headers))
        data += self._h11.send(h11.Data(data=body)) if body else b""
        data += self._h11.send(h11.EndOfMessage())
        self._writer.write(data)
        await self._writer.drain()
        event = await self._next()
        while isinstance(event, h11.InformationalResponse):
            event = await self._next()
        if not isinstance(event, h11.Response):
            raise ConnectionError(f"unexpected HTTP event {event!r}")
        return Response(event.status_code, list(event.headers))

    async def chunks(self) -> AsyncIterator[bytes]:
        """The response body as it arrives; ends at the end of the message."""
        while True:
            event = await self._next()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def request(self, method: str, target: str, headers: Headers = (), body: bytes = b"") -> Response:
        head = await self.start(method, target, headers, body)
        return Response(head.status, head.headers, await self.read())

    async def _next(self) -> object:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                self._h11.receive_data(await self._reader.read(READ_SIZE))
                continue
            if isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection")
            return event

    @property
    def reusable(self) -> bool:
        return self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE

    def recycle(self) -> bool:
        """Make a finished connection ready for the next request; False if it cannot be reused."""
        if not self.reusable:
            return False
        self._h11.start_next_cycle()
        self.idle_since = time.monotonic()
        return True

    def abort(self) -> None:
        """Cut the connection at once, as a network failure would."""
        self._writer.transport.abort()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


class HttpClient:
    """Requests to one origin, reusing a single idle keep-alive connection (enough for POST and DELETE)."""

    __slots__ = ("origin", "_idle")

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self._idle: HttpConnection | None = None

    async def request(self, method: str, target: str, headers: Headers = (), body: bytes = b"") -> Response:
        conn = self._take_idle()
        if conn is not None:
            try:
                response = await conn.request(method, target, headers, body)
            except (ConnectionError, h11.ProtocolError):
                await conn.aclose()
                if method == "POST":  # the server may have got it: sending it again could deliver it twice
                    raise
                conn = None  # a keep-alive connection the server had already closed: try a fresh one
        if conn is None:
            conn = await HttpConnection.open(self.origin)
            try:
                response = await conn.request(method, target, headers, body)
            except BaseException:
                conn.abort()
                raise
        self._keep(conn)
        return response

    def _take_idle(self) -> HttpConnection | None:
        conn, self._idle = self._idle, None
        if conn is not None and time.monotonic() - conn.idle_since > IDLE_REUSE:
            conn.abort()
            return None
        return conn

    def _keep(self, conn: HttpConnection) -> None:
        if conn.recycle() and self._idle is None:
            self._idle = conn
        else:
            conn.abort()

    async def stream(self, method: str, target: str, headers: Headers = ()) -> tuple[HttpConnection, Response]:
        """A request on a connection of its own, for a response read as it streams."""
        conn = await HttpConnection.open(self.origin)
        try:
            return conn, await conn.start(method, target, headers)
        except BaseException:
            conn.abort()
            raise

    async def aclose(self) -> None:
        if self._idle is not None:
            conn, self._idle = self._idle, None
            await conn.aclose()
