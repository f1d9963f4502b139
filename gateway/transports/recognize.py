"""Which transport a GET (or WebSocket) on the base URL is for, from the request alone.

Each rule tests what only its transport sends, so the answer never depends on the priority order.
"""

from __future__ import annotations

from ..protocol.transports import FOREVER_FRAME, LONG_POLLING, SERVER_SENT_EVENTS, WEBSOCKETS
from ..server.asgi import Request


def recognize(request: Request) -> str:
    """The name of the transport ``request`` asks for."""
    if request.scope["type"] == "websocket":
        return WEBSOCKETS
    if "text/event-stream" in (request.header(b"accept") or ""):
        return SERVER_SENT_EVENTS
    if request.query.get("transport") == FOREVER_FRAME:
        return FOREVER_FRAME
    return LONG_POLLING  # any other GET: a poll
