"""Errors raised by the sans-IO core, each with a hint for the wire."""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer broke the protocol.

    ``status`` is the HTTP status the I/O layer should answer with, and ``ws_code`` the
    WebSocket close code, so that the error is turned into a response in one place.
    """

    def __init__(self, message: str, *, status: int = 400, ws_code: int = 1002) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.ws_code = ws_code


class MessageTooLarge(ProtocolError):
    """A record, frame or body exceeded the configured limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes", status=413, ws_code=1009)


class OutboxOverflow(Exception):
    """A slow consumer let its unsent and unacknowledged messages grow past the limit."""


class StateError(Exception):
    """An event that the connection cannot handle in its current state (a bug in the I/O layer)."""
