"""ForeverFrame: a held text/html page of script chunks that postMessage each payload to the parent."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from ..asgi import STREAM_HEADERS, Receive, Request, Send, respond_error, wait_disconnect
from ..connection import ServerConnection
from ..protocol.framing import FF_END, ff_chunk, ff_prelude, valid_frame_id, valid_target_origin
from .base import Stalled, TransportOptions, cancel, claim, pump, release, within_send_timeout


class ForeverFrameTransport:
    name: ClassVar[str] = "ForeverFrame"
    persistent: ClassVar[bool] = True

    def __init__(self, options: TransportOptions) -> None:
        self.options = options

    def accepts(self, request: Request) -> bool:
        return request.query.get("transport") == self.name

    async def serve(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        origin, frame = request.query.get("origin", ""), request.query.get("frame", "")
        if not valid_frame_id(frame):
            await respond_error(send, 400, "frame must match [A-Za-z0-9_-]{1,64}")
            return
        if not valid_target_origin(origin):  # whatever the allowlist holds, even "*": one real origin only
            await respond_error(send, 403, f"origin {origin[:300]!r} is not allowed to embed this frame: "
                                           "it must be one scheme://host[:port]")
            return
        if not self.options.origin_allowed(request, origin):
            await respond_error(send, 403, f"origin {origin!r} is not allowed to embed this frame")
            return
        generation = claim(conn, self, resume=conn.core.handshaken)
        if generation is None:
            await respond_error(send, 409, "another stream is already open for this connection")
            return
        headers = [
            (b"content-type", b"text/html; charset=utf-8"), (b"x-content-type-options", b"nosniff"), *STREAM_HEADERS,
        ]
        gone = asyncio.ensure_future(wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": ff_prelude(origin, frame), "more_body": True})

            async def write(text: str) -> None:
                await send({"type": "http.response.body", "body": ff_chunk(text), "more_body": True})

            await pump(conn, generation, write, gone)
            if not gone.done():
                await within_send_timeout(conn, send({"type": "http.response.body", "body": FF_END}))
        except Stalled:
            pass  # the client reads nothing: the response is given up unfinished, and the server drops the socket
        finally:
            await cancel(gone)
            release(conn, generation, self)
