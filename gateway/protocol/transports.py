"""The transports' names, and their priority order: the one place that order is written."""

from __future__ import annotations

WEBSOCKETS = "WebSockets"
SERVER_SENT_EVENTS = "ServerSentEvents"
FOREVER_FRAME = "ForeverFrame"
LONG_POLLING = "LongPolling"

TRANSPORT_NAMES: tuple[str, ...] = (WEBSOCKETS, SERVER_SENT_EVENTS, FOREVER_FRAME, LONG_POLLING)
"""Every transport, best first: what negotiate offers unless told otherwise, and the order clients try."""

OPT_IN: frozenset[str] = frozenset({FOREVER_FRAME})
"""Transports that the SignalR spec does not define: negotiate lists them only to a client that asks (strict
third-party clients fail on a transport name they do not know)."""

TEXT = "Text"
BINARY = "Binary"
TRANSFER_FORMATS: dict[str, tuple[str, ...]] = {
    WEBSOCKETS: (TEXT, BINARY),
    SERVER_SENT_EVENTS: (TEXT,),
    FOREVER_FRAME: (TEXT,),
    LONG_POLLING: (TEXT, BINARY),
}
"""What each transport carries, as negotiate lists it: SSE and ForeverFrame are text only, so a client of a binary
hub protocol (MessagePack) skips them."""
