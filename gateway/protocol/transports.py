"""The transports' names, and their priority order: the one place that order is written."""

from __future__ import annotations

WEBSOCKETS = "WebSockets"
SERVER_SENT_EVENTS = "ServerSentEvents"
FOREVER_FRAME = "ForeverFrame"
LONG_POLLING = "LongPolling"

TRANSPORT_NAMES: tuple[str, ...] = (WEBSOCKETS, SERVER_SENT_EVENTS, FOREVER_FRAME, LONG_POLLING)
"""Every transport, best first: what negotiate offers unless told otherwise, and the order clients try."""
