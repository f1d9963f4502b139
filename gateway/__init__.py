"""gateway: one live, ordered, lossless message channel from every browser to a Python server.

WebSockets, Server-Sent Events, forever-iframe and long polling behind one SignalR-compatible
connection, with a hub layer (RPC, groups, users) on top.
"""

from .app import Gateway, Refused
from .backplane import HubClients
from .hub import Hub, HubError
from .protocol import Limits

__all__ = ["Gateway", "Hub", "HubClients", "HubError", "Limits", "Refused"]
__version__ = "0.1.0"
