"""The streaming base of ServerSentEvents and ForeverFrame: one held HTTP response, a prelude, then every
output chunk framed as the subclass says, until the connection closes or a newer stream replaces this one."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import ClassVar

from ..protocol.hubjson import PING
from ..server.asgi import STREAM_HEADERS, Receive, Request, Send, respond_error, wait_disconnect
from ..server.connection import ServerConnection
from .base import Stalled, TransportBase, cancel, claim, pump, release, within_send_timeout


class StreamingTransport(TransportBase):
    """Subclasses give ``headers``, ``prelude``, ``frame`` and ``end``, and may refuse a request in ``admit``.

    A fan-out pushes the same record object to every connection, and a connection with nothing else queued
    writes it as it is, so the transport remembers its last framing: one framing per message, not per client.
    """

    headers: ClassVar[list[tuple[bytes, bytes]]]
    end: ClassVar[bytes] = b""
    binary: ClassVar[bool] = False
    _last: tuple[str, bytes] = ("", b"")

    _ping: bytes | None = None

    def framed(self, text: str) -> bytes:
        """``frame(text)``, from the last framing when ``text`` is the very same object; the keep-alive ping's
        framing is kept apart (framed once), so that pings between a fan-out's writes do not evict it."""
        last = self._last
        if last[0] is text:
            return last[1]
        if text is PING:
            ping = self._ping
            if ping is None:
                ping = self._ping = self.frame(PING)
            return ping
        body = self.frame(text)
        self._last = (text, body)
        return body

    async def admit(self, request: Request, send: Send) -> bool:
        """Whether to serve ``request``; when not, the refusal has been sent."""
        return True

    def prelude(self, request: Request) -> bytes:
        raise NotImplementedError

    def frame(self, text: str) -> bytes:
        raise NotImplementedError

    async def _write(self, send: Send, text: str) -> None:
        await send({"type": "http.response.body", "body": self.framed(text), "more_body": True})

    async def serve(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        if not await self.admit(request, send):
            return
        protocol = conn.core.protocol
        if protocol.transfer_format != "Text":
            await respond_error(send, 400, f"{self.name} carries the Text transfer format only; this connection "
                                           f"speaks '{protocol.name}' (Binary): use WebSockets or LongPolling")
            return
        generation = claim(conn, self, resume=conn.core.handshaken)
        if generation is None:
            await respond_error(send, 409, "another stream is already open for this connection")
            return
        gone = asyncio.ensure_future(wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [*self.headers, *STREAM_HEADERS]})
            await send({"type": "http.response.body", "body": self.prelude(request), "more_body": True})
            del request  # a held stream keeps no request (its query, its headers)
            await pump(conn, generation, partial(self._write, send), gone)
            if not gone.done():
                await within_send_timeout(conn, send({"type": "http.response.body", "body": self.end}))
        except Stalled:
            pass  # the client reads nothing: the response is given up unfinished, and the server drops the socket
        finally:
            await cancel(gone)
            release(conn, generation, self)
