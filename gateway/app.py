"""``Gateway(hub)``: a hub served by the server layer; the public entry point."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .backplane import Backplane, HubClients, InProcessBackplane, Target
from .hub import Hub, HubDispatcher
from .protocol import Limits
from .server.app import Server, ServerOptions
from .server.negotiate import Authenticate, Refused
from .transports import TRANSPORT_NAMES

__all__ = ["Gateway", "Refused"]


class Gateway(Server):
    """An ASGI app serving one hub; mount it at a path such as ``/hubs/jobs``.

    ``transports`` both restricts and orders what negotiate offers. ``allowed_origins`` lists the
    origins (``scheme://host:port``) that may use the hub from another origin; ``"*"`` allows any
    origin, without credentials.
    """

    def __init__(
        self,
        hub: type[Hub],
        *,
        name: str | None = None,
        transports: Iterable[str] = TRANSPORT_NAMES,
        allowed_origins: Iterable[str] = (),
        backplane: Backplane | None = None,
        limits: Limits | None = None,
        poll_timeout: float = 20.0,
        max_body: int = 1024 * 1024,
        max_connections: int = 100_000,
        max_groups_per_connection: int = 100,
        authenticate: Authenticate | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick_interval: float = 1.0,
    ) -> None:
        options = ServerOptions(
            tuple(transports), frozenset(allowed_origins), limits or Limits(), poll_timeout, max_body,
            max_connections, max_groups_per_connection, authenticate, clock, tick_interval,
        )
        name = name or hub.__name__
        backplane = backplane or InProcessBackplane()
        self.clients = HubClients(self._publish)
        self.dispatcher = HubDispatcher(hub, name, backplane, self._publish)
        super().__init__(self.dispatcher, name, backplane, options)

    async def _publish(self, target: Target, record: str) -> None:
        await self.backplane.publish(self.name, target, record)
