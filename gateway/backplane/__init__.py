"""Backplanes: in-process (the default) and, for several processes, Redis."""

from .base import Backplane, LocalDelivery, LocalNode
from .clients import Ask, ClientProxy, HubClients, Publish
from .memory import InProcessBackplane
from .messages import Target

__all__ = [
    "Ask", "Backplane", "ClientProxy", "HubClients", "InProcessBackplane", "LocalDelivery", "LocalNode", "Publish",
    "Target",
]
