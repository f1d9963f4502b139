"""gateway: one live, ordered, lossless message channel from every browser to a Python server.

WebSockets, Server-Sent Events, forever-iframe and long polling behind one SignalR-compatible
connection, with a hub layer (RPC, groups, users) on top.
"""

from .app import Gateway, Refused
from .backplane import HubClients
from .hub import Hub, HubError
from .protocol import Limits
from .server.settings import Settings
from .server.view import ConnectionCounts, ConnectionInfo, ConnectionsView
from .server.wire import WireCounts

__all__ = [
    "ConnectionCounts", "ConnectionInfo", "ConnectionsView", "Gateway", "Hub", "HubClients", "HubError", "Limits",
    "Refused", "Settings", "WireCounts",
]
__version__ = "0.1.0"
