"""``Gateway(hub)``: a hub served by the server layer; the public entry point."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .backplane import Backplane, HubClients, InProcessBackplane, Target
from .hub import Hub, HubDispatcher
from .protocol.broadcast import Broadcast
from .server.app import Server
from .server.negotiate import Authenticate, Refused
from .server.settings import Settings
from .streams import StreamLimits
from .transports import TRANSPORT_NAMES

__all__ = ["Gateway", "Refused"]

DEFAULT_SETTINGS = Settings()


class Gateway(Server):
    """An ASGI app serving one hub; mount it at a path such as ``/hubs/jobs``.

    ``transports`` both restricts and orders what negotiate offers. ``allowed_origins`` lists the
    origins (``scheme://host:port``) that may use the hub from another origin; ``"*"`` allows any
    origin, without credentials. ``settings`` holds every timing and limit (see ``Settings``).

    The rate limits key on the TCP peer's address; ``trusted_proxies`` (addresses or networks) names the
    proxies whose ``X-Forwarded-For`` is believed instead.
    """

    def __init__(
        self,
        hub: type[Hub],
        *,
        settings: Settings = DEFAULT_SETTINGS,
        name: str | None = None,
        transports: Iterable[str] = TRANSPORT_NAMES,
        allowed_origins: Iterable[str] = (),
        backplane: Backplane | None = None,
        authenticate: Authenticate | None = None,
        clock: Callable[[], float] = time.monotonic,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        name = name or hub.__name__
        backplane = backplane or InProcessBackplane()
        self.dispatcher = HubDispatcher(hub, name, backplane, self._publish, _stream_limits(settings))
        self.clients = HubClients(self._publish, self.dispatcher.ask)
        super().__init__(
            self.dispatcher, name, backplane, settings, transports=transports, allowed_origins=allowed_origins,
            authenticate=authenticate, clock=clock, trusted_proxies=trusted_proxies,
        )
        self.dispatcher.find = lambda connection_id: self.registry.by_id.get(connection_id)

    async def _publish(self, target: Target, record: Broadcast) -> None:
        await self.backplane.publish(self.name, target, record)


def _stream_limits(settings: Settings) -> StreamLimits:
    return StreamLimits(
        max_streams=settings.max_streams_per_connection,
        max_client_results=settings.max_client_results_per_connection,
        client_result_timeout=settings.client_result_timeout,
        stream_buffer=min(settings.stream_buffer, settings.max_buffer // 2),
        upload_buffer=settings.upload_buffer,
    )
