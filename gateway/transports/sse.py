"""ServerSentEvents: a held text/event-stream response; records go out as data events."""

from __future__ import annotations

from typing import ClassVar

from ..protocol.framing import SSE_PRELUDE, sse_event
from ..protocol.transports import SERVER_SENT_EVENTS
from ..server.asgi import Request
from .streaming import StreamingTransport


class ServerSentEventsTransport(StreamingTransport):
    name: ClassVar[str] = SERVER_SENT_EVENTS
    headers: ClassVar[list[tuple[bytes, bytes]]] = [(b"content-type", b"text/event-stream; charset=utf-8")]

    def prelude(self, request: Request) -> bytes:
        return SSE_PRELUDE

    def frame(self, text: str) -> bytes:
        return sse_event(text)
