"""A Python client of the gateway's protocol, on h11 and wsproto over asyncio streams.

``HubClient`` (invocations, client methods, stateful reconnect) sits on ``ClientConnection``
(negotiate, one transport), which sits on one transport module per transport.
"""

from .connection import BY_NAME, TRANSPORTS, ClientConnection, negotiate
from .http import HttpClient, HttpError, Origin
from .hub import ClientState, HubClient, HubError, StartError
from .stateful import Ledger
from .transport import Transport, TransportError

__all__ = [
    "BY_NAME", "TRANSPORTS", "ClientConnection", "ClientState", "HttpClient", "HttpError", "HubClient", "HubError",
    "Ledger", "Origin", "StartError", "Transport", "TransportError", "negotiate",
]
