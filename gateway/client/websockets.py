"""WebSockets: one full-duplex stream (wsproto over asyncio streams); text frames carry JSON records, binary
frames MessagePack ones."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from .http import READ_SIZE, HttpClient, HttpError, Origin, open_stream
from .transport import CLOSE, OnClose, OnReceive, TransportError, end_task, transport_target


class WebSocketsTransport:
    name: ClassVar[str] = "WebSockets"
    binary: ClassVar[bool] = True

    __slots__ = (
        "_origin", "_http", "_on_receive", "_on_close", "_ws", "_reader", "_writer", "_task", "_text", "_bytes",
    )

    def __init__(self, origin: Origin, http: HttpClient, on_receive: OnReceive, on_close: OnClose) -> None:
        self._origin = origin
        self._http = http
        self._on_receive = on_receive
        self._on_close = on_close
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._text: list[str] = []
        self._bytes: list[bytes] = []

    async def connect(self, token: str, *, resume: bool = False) -> None:
        reader, writer = await open_stream(self._origin)
        ws = self._ws = WSConnection(ConnectionType.CLIENT)
        self._text = []
        self._bytes = []
        try:
            writer.write(ws.send(Request(host=self._origin.host_header, target=transport_target(self._origin, token))))
            await writer.drain()
            await self._handshake(ws, reader)
        except BaseException:
            writer.transport.abort()
            raise
        self._reader, self._writer = reader, writer
        self._task = asyncio.ensure_future(self._read(ws, reader, writer))

    async def _handshake(self, ws: WSConnection, reader: asyncio.StreamReader) -> None:
        status, body = 0, b""
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                raise TransportError("the server closed the connection during the WebSocket handshake")
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise HttpError(status, b"", "WebSocket upgrade")
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise HttpError(status, body, "WebSocket upgrade")

    async def _read(self, ws: WSConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        error: Exception | None = None
        try:
            while True:
                data = await reader.read(READ_SIZE)
                ws.receive_data(data or None)
                for event in ws.events():
                    if self._writer is not writer or self._handle(ws, event, writer):
                        return  # the stream ended, or a newer stream replaced this one
                if not data:
                    raise TransportError("the WebSocket closed without a close frame")
        except Exception as exc:
            error = exc
        finally:
            writer.transport.abort()
            if self._writer is writer:
                self._writer = None
                self._on_close(error)

    def _handle(self, ws: WSConnection, event: Event, writer: asyncio.StreamWriter) -> bool:
        """Handle one event; True when the stream has ended."""
        if isinstance(event, TextMessage):
            self._text.append(event.data)
            if event.message_finished:
                text = "".join(self._text)
                self._text = []
                self._on_receive(text)
        elif isinstance(event, Ping):
            writer.write(ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            if ws.state is ConnectionState.REMOTE_CLOSING:
                writer.write(ws.send(event.response()))
            if event.code not in (1000, 1001):
                raise TransportError(f"the server closed the WebSocket with code {event.code}: {event.reason}")
            return True
        elif isinstance(event, BytesMessage):
            self._bytes.append(bytes(event.data))
            if event.message_finished:
                data = b"".join(self._bytes)
                self._bytes = []
                self._on_receive(data)
        return False

    async def send(self, text: str | bytes) -> None:
        writer = self._writer
        if writer is None:
            raise TransportError("the WebSocket is not open")
        writer.write(self._ws.send(TextMessage(data=text) if isinstance(text, str) else BytesMessage(data=text)))
        await writer.drain()

    async def stop(self, close: str | bytes = CLOSE) -> None:
        writer = self._writer
        if writer is not None and self._ws.state is ConnectionState.OPEN:
            # a Close message first: the server then ends the connection even under stateful reconnect
            message = TextMessage(data=close) if isinstance(close, str) else BytesMessage(data=close)
            writer.write(self._ws.send(message))
            writer.write(self._ws.send(CloseConnection(code=1000)))
        await end_task(self._task)

    async def abort(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
