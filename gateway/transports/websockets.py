"""WebSockets: one full-duplex stream; text frames carry JSON records, binary frames MessagePack ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar

from ..protocol import ProtocolError
from ..protocol.transports import WEBSOCKETS
from ..server.asgi import Receive, Request, Send, reject_websocket
from ..server.connection import ServerConnection
from ..server.wire import ws_received
from .base import Stalled, TransportBase, cancel, claim, pump, release, within_send_timeout

log = logging.getLogger("gateway")


class WebSocketsTransport(TransportBase):
    name: ClassVar[str] = WEBSOCKETS

    async def serve(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        generation = claim(conn, self, resume=conn.core.handshaken)
        if generation is None:
            await reject_websocket(request.scope, send, 409, "another stream is already open for this connection")
            return
        await send({"type": "websocket.accept"})
        del request  # a held stream keeps no request (its query, its headers)
        duplex = _Duplex(send)
        reader = asyncio.ensure_future(self._read(conn, receive, duplex))

        stalled = False
        try:
            await pump(conn, generation, duplex.write, reader)
        except Stalled:
            stalled = True  # the client reads nothing: no close frame could reach it either
        except Exception as exc:  # the socket failed under us
            log.info("connection %s: websocket write failed: %r", conn.id, exc)
        finally:
            code = duplex.code if duplex.ended else (1012 if conn.leaving else 1000)  # 1012: restart
            await duplex.stop(reader)
            release(conn, generation, self)
            if code is not None and not stalled:
                with contextlib.suppress(Exception):
                    await within_send_timeout(conn, send({"type": "websocket.close", "code": code}))

    async def _read(
        self, conn: ServerConnection, receive: Receive, duplex: _Duplex,
    ) -> None:
        """Feed the client's frames to the connection until it leaves or breaks the protocol.

        A protocol error is answered with a close frame carrying its code (1002, 1009; 1003 for a binary
        frame on a JSON connection). A message over ``max_frame_size`` is refused whole, before any of its
        records is read. Binary frames carry the handshake (as some clients send it) and MessagePack records.
        """
        wire = conn.wire
        while not duplex.stopping:
            message = await receive()
            ws_received(wire, message)  # ``metered`` leaves a WebSocket's receive to its reader
            if message["type"] == "websocket.disconnect":
                duplex.end(None)
                return
            data: str | bytes | None = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
                if conn.core.handshaken and conn.core.protocol.transfer_format == "Text":
                    conn.close("binary frames are not supported; use the Text transfer format")
                    duplex.end(1003)
                    return
            duplex.feeding = True
            try:
                limit = conn.core.limits.max_frame_size
                if len(data) * 4 > limit:  # else under the limit whatever its characters
                    _check_size(data, limit)
                await conn.receive(data)
            except ProtocolError as exc:
                log.warning("connection %s closed: %s", conn.id, exc.message)
                conn.close(exc.message)
                duplex.end(exc.ws_code)
                return
            finally:
                duplex.feeding = False


class _Duplex:
    """Both sides of one WebSocket stream in one small object: its writer; whether its reader is feeding the
    connection, should stop, or has ended (and with which close code)."""

    __slots__ = ("send", "feeding", "stopping", "ended", "code")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.feeding = False
        self.stopping = False
        self.ended = False
        self.code: int | None = None
        """Once ``ended`` (by the reader): the close code to answer with; None when the client left."""

    def end(self, code: int | None) -> None:
        self.ended, self.code = True, code

    async def write(self, payload: str | bytes) -> None:
        """One frame: text for a JSON record batch, binary for MessagePack."""
        if isinstance(payload, str):
            await self.send({"type": "websocket.send", "text": payload})
        else:
            await self.send({"type": "websocket.send", "bytes": payload})

    async def stop(self, reader: asyncio.Future[None]) -> None:
        """End the reader, never in the middle of a feed: the messages of a frame are counted by the sequence
        ledger before they are dispatched, so a feed cut short would lose messages that a resume's replay
        then skips as already received. A reader waiting for the next frame is cancelled at once."""
        self.stopping = True
        if self.feeding:
            with contextlib.suppress(Exception):
                await asyncio.shield(reader)
            if reader.done():
                return
        await cancel(reader)


def _check_size(text: str | bytes, limit: int) -> None:
    """Raise (1009) when ``text`` is over ``limit`` bytes of UTF-8; a text is encoded only when nothing else tells."""
    length = len(text)
    if isinstance(text, bytes):
        if length > limit:
            raise ProtocolError(f"WebSocket message of {length} bytes exceeds the limit of {limit} bytes",
                                status=413, ws_code=1009)
        return
    if length * 4 <= limit or (length <= limit and text.isascii()):
        return
    if length > limit:  # every character takes at least one byte: no copy of a large text to measure it
        size = str(length) if text.isascii() else f"at least {length}"
    else:
        encoded = len(text.encode("utf-8", "surrogatepass"))  # under four times the limit
        if encoded <= limit:
            return
        size = str(encoded)
    message = f"WebSocket message of {size} bytes exceeds the limit of {limit} bytes"
    raise ProtocolError(message, status=413, ws_code=1009)
