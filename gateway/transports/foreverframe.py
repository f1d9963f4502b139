"""ForeverFrame: a held text/html page of script chunks that postMessage each payload to the parent."""

from __future__ import annotations

from typing import ClassVar

from ..protocol.framing import FF_END, ff_chunk, ff_prelude, valid_frame_id, valid_target_origin
from ..protocol.transports import FOREVER_FRAME
from ..server.asgi import Request, Send, respond_error
from .streaming import StreamingTransport


class ForeverFrameTransport(StreamingTransport):
    name: ClassVar[str] = FOREVER_FRAME
    headers: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"content-type", b"text/html; charset=utf-8"), (b"x-content-type-options", b"nosniff"),
    ]
    end: ClassVar[bytes] = FF_END

    async def admit(self, request: Request, send: Send) -> bool:
        """The frame id must be well formed, and the page that embeds the frame of an allowed origin."""
        origin, frame = request.query.get("origin", ""), request.query.get("frame", "")
        if not valid_frame_id(frame):
            await respond_error(send, 400, "frame must match [A-Za-z0-9_-]{1,64}")
            return False
        if not valid_target_origin(origin):  # whatever the allowlist holds, even "*": one real origin only
            await respond_error(send, 403, f"origin {origin[:300]!r} is not allowed to embed this frame: "
                                           "it must be one scheme://host[:port]")
            return False
        if not self.options.origin_allowed(request, origin):
            await respond_error(send, 403, f"origin {origin!r} is not allowed to embed this frame")
            return False
        return True

    def prelude(self, request: Request) -> bytes:
        return ff_prelude(request.query.get("origin", ""), request.query.get("frame", ""))

    def frame(self, text: str) -> bytes:
        return ff_chunk(text)
