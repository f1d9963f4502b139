"""The handler interface: what the server calls for each connection. The hub implements it; the server
knows nothing else about the hub."""

from __future__ import annotations

from typing import Protocol

from ..protocol import Received
from .connection import ServerConnection


class Handler(Protocol):
    """Receives what connections bring: their messages, and their end."""

    async def received(self, conn: ServerConnection, received: Received) -> None:
        """``conn`` brought messages (or completed its handshake)."""
        ...

    async def closed(self, conn: ServerConnection, error: str | None) -> None:
        """``conn``, whose handshake completed, has closed (``error`` None when it closed normally)."""
        ...

    def moved(self, conn: ServerConnection) -> None:
        """``conn`` was handed over to another process, which now serves it (and reports its end): what ran
        for it here ends. What an invocation still pushes follows the connection (``ServerConnection.moved``)."""
        ...
