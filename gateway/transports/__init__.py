"""The transports, one module each. Their order is ``protocol.transports.TRANSPORT_NAMES``, and nothing
else encodes it; ``recognize`` tells which one a request is for, whatever that order."""

from __future__ import annotations

from ..protocol.transports import TRANSPORT_NAMES
from .base import Transport, TransportOptions
from .foreverframe import ForeverFrameTransport
from .longpolling import LongPollingTransport
from .recognize import recognize
from .sse import ServerSentEventsTransport
from .websockets import WebSocketsTransport

BY_NAME: dict[str, type[Transport]] = {
    t.name: t for t in (ForeverFrameTransport, LongPollingTransport, ServerSentEventsTransport, WebSocketsTransport)
}
TRANSPORTS: tuple[type[Transport], ...] = tuple(BY_NAME[name] for name in TRANSPORT_NAMES)

__all__ = ["BY_NAME", "TRANSPORTS", "TRANSPORT_NAMES", "Transport", "TransportOptions", "recognize"]
