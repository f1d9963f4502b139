"""The transports, one module each. ``TRANSPORTS`` is the priority order, and nothing else encodes it."""

from __future__ import annotations

from .base import Transport, TransportOptions
from .foreverframe import ForeverFrameTransport
from .longpolling import LongPollingTransport
from .sse import ServerSentEventsTransport
from .websockets import WebSocketsTransport

TRANSPORTS: tuple[type[Transport], ...] = (
    WebSocketsTransport, ServerSentEventsTransport, ForeverFrameTransport, LongPollingTransport,
)
TRANSPORT_NAMES: tuple[str, ...] = tuple(t.name for t in TRANSPORTS)
BY_NAME: dict[str, type[Transport]] = {t.name: t for t in TRANSPORTS}

__all__ = ["BY_NAME", "TRANSPORTS", "TRANSPORT_NAMES", "Transport", "TransportOptions"]
