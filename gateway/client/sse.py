"""ServerSentEvents: a held ``text/event-stream`` GET for server-to-client, POSTs the other way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from ..protocol.framing import SSEParser
from .transport import HttpStreamTransport

HEADERS = [("Accept", "text/event-stream"), ("Cache-Control", "no-cache")]


class ServerSentEventsTransport(HttpStreamTransport):
    name: ClassVar[str] = "ServerSentEvents"

    __slots__ = ()

    def _headers(self) -> list[tuple[str, str]]:
        return HEADERS

    def _parser(self) -> Callable[[bytes], Sequence[str | None]]:
        return SSEParser().feed
