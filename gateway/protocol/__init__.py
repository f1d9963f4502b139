"""The sans-IO core: no asyncio, no Starlette, no clock reads."""

from .connection import Connection, Limits, Received, State
from .errors import MessageTooLarge, OutboxOverflow, ProtocolError, StateError

__all__ = [
    "Connection", "Limits", "MessageTooLarge", "OutboxOverflow", "ProtocolError", "Received", "State",
    "StateError",
]
