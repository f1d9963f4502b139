"""Backplanes: in-process (the default) and, for several processes, Redis."""

from .base import Backplane, LocalDelivery, Target
from .memory import InProcessBackplane

__all__ = ["Backplane", "InProcessBackplane", "LocalDelivery", "Target"]
