"""ServerSentEvents: a held text/event-stream response; records go out as data events."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from ..asgi import STREAM_HEADERS, Receive, Request, Send, respond_error, wait_disconnect
from ..connection import ServerConnection
from ..protocol.framing import SSE_PRELUDE, sse_event
from .base import Stalled, TransportOptions, cancel, claim, pump, release, within_send_timeout


class ServerSentEventsTransport:
    name: ClassVar[str] = "ServerSentEvents"
    persistent: ClassVar[bool] = True

    def __init__(self, options: TransportOptions) -> None:
        self.options = options

    def accepts(self, request: Request) -> bool:
        return "text/event-stream" in request.headers.get("accept", "")

    async def serve(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        generation = claim(conn, self, resume=conn.core.handshaken)
        if generation is None:
            await respond_error(send, 409, "another stream is already open for this connection")
            return
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), *STREAM_HEADERS]
        gone = asyncio.ensure_future(wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": SSE_PRELUDE, "more_body": True})

            async def write(text: str) -> None:
                await send({"type": "http.response.body", "body": sse_event(text), "more_body": True})

            await pump(conn, generation, write, gone)
            if not gone.done():
                await within_send_timeout(conn, send({"type": "http.response.body", "body": b""}))
        except Stalled:
            pass  # the client reads nothing: the response is given up unfinished, and the server drops the socket
        finally:
            await cancel(gone)
            release(conn, generation, self)
