"""The Python client: I/O drivers over ``gateway.protocol``'s ``ClientSession``, on h11 and wsproto.

``HubClient`` (invocations, client methods, stateful reconnect) sits on ``ClientConnection``
(negotiate, one transport), which sits on one transport module per transport. ``lean`` is the
callback driver of the same session for many connections at once (the load generator's).
"""

from ..protocol.ledger import Ledger
from ..protocol.session import ClientState
from .connection import BY_NAME, TRANSPORTS, ClientConnection, negotiate
from .http import HttpClient, HttpError, Origin
from .hub import HubClient, HubError, StartError
from .transport import Transport, TransportError

__all__ = [
    "BY_NAME", "TRANSPORTS", "ClientConnection", "ClientState", "HttpClient", "HttpError", "HubClient", "HubError",
    "Ledger", "Origin", "StartError", "Transport", "TransportError", "negotiate",
]
