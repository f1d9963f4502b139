"""The sans-IO core: no asyncio, no Starlette, no clock reads."""

from .connection import Connection, Limits, Received, State
from .errors import MessageTooLarge, OutboxOverflow, ProtocolError, StateError
from .ledger import Ledger
from .session import ClientSession, ClientState, Incoming

__all__ = [
    "ClientSession", "ClientState", "Connection", "Incoming", "Ledger", "Limits", "MessageTooLarge", "OutboxOverflow",
    "ProtocolError", "Received", "State", "StateError",
]
