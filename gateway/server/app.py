"""The ASGI app of one hub's server: routes a request to negotiate, the JS client, or the base URL's
endpoints, after the origin policy. It composes the server's parts and knows the hub only as a Handler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from ..backplane import Backplane
from ..protocol import Limits
from ..protocol.negotiate import NegotiateRequest
from ..transports import BY_NAME, TRANSPORT_NAMES, Transport, TransportOptions
from . import redact
from .asgi import Receive, Request, Scope, Send, refuse, respond
from .connection import ServerConnection
from .endpoints import Endpoints
from .handler import Handler
from .lifecycle import Lifecycle
from .limits import BadTokenLimiter
from .lookup import Closed, Found, HeldElsewhere, Lingering, Tokens
from .negotiate import Authenticate, negotiate
from .node import Node
from .origins import OriginPolicy, preflight
from .registry import Registry
from .routing import GatewayRoute
from .ticker import Ticker

log = logging.getLogger("gateway")


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """The server's settings (``Gateway``'s keyword arguments document them)."""

    transports: tuple[str, ...] = TRANSPORT_NAMES
    allowed_origins: frozenset[str] = frozenset()
    limits: Limits = Limits()
    poll_timeout: float = 20.0
    max_body: int = 1024 * 1024
    max_connections: int = 100_000
    max_groups_per_connection: int = 100
    authenticate: Authenticate | None = None
    clock: Callable[[], float] = time.monotonic
    tick_interval: float = 1.0


def _client_js() -> bytes:
    return resources.files("gateway").joinpath("static/gateway.js").read_bytes()


def _offered(names: Iterable[str], options: TransportOptions) -> tuple[Transport, ...]:
    unknown = [t for t in names if t not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown transports {unknown}; known: {list(TRANSPORT_NAMES)}")
    return tuple(BY_NAME[t](options) for t in names)


class Server:
    """An ASGI app serving the connections of one hub; ``handler`` receives what they bring."""

    def __init__(self, handler: Handler, name: str, backplane: Backplane, options: ServerOptions) -> None:
        redact.install()  # the server's access logs print URLs, and URLs carry tokens
        self.name = name
        self.options = options
        self.limits = options.limits
        self.origins = OriginPolicy(options.allowed_origins)
        self.transports = _offered(options.transports, TransportOptions(options.poll_timeout, self.origin_allowed))
        self.registry = Registry(options.max_groups_per_connection)
        self.backplane = backplane
        self.closed = Closed()
        self.tokens = Tokens(name, self.registry, backplane, self.closed)
        self.lifecycle = Lifecycle(name, self.registry, backplane, handler, self.closed,
                                   limits=options.limits, clock=options.clock)
        self.endpoints = Endpoints(name, backplane, self.transports, max_body=options.max_body,
                                   send_timeout=options.limits.send_timeout, clock=options.clock)
        self.ticker = Ticker(self.registry, self.closed, options.clock, options.tick_interval)
        self.node = Node(self.registry, self.lifecycle.restore)
        backplane.register(name, self.node)

    @property
    def allowed_origins(self) -> frozenset[str]:
        return self.origins.allowed

    @property
    def bad_tokens(self) -> BadTokenLimiter:
        """The limiter of unknown-token requests per client address (replaceable, e.g. in tests)."""
        return self.endpoints.bad_tokens

    @bad_tokens.setter
    def bad_tokens(self, limiter: BadTokenLimiter) -> None:
        self.endpoints.bad_tokens = limiter

    def origin_allowed(self, request: Request, origin: str) -> bool:
        return self.origins.allows(request, origin)

    def route(self, path: str) -> GatewayRoute:
        """A Starlette route serving this gateway at ``path`` (e.g. ``/hubs/jobs``)."""
        return GatewayRoute(path, self)

    def create(self, stateful: bool, user: str | None, *, version: int = 1) -> ServerConnection:
        """A new connection of this process (what negotiate opens)."""
        return self.lifecycle.create(stateful, user, version=version)

    def tick(self, now: float) -> None:
        """Send due keep-alives, close connections whose deadlines passed, forget closed ones."""
        self.ticker.tick(now)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self.ticker.start():
            await self.backplane.start()
        request = Request(scope)
        if await self.origins.refused(request, send):
            return
        if scope["type"] == "http":
            send = self.origins.cors(request, send)
        await self._route(request, receive, send)

    async def _route(self, request: Request, receive: Receive, send: Send) -> None:
        if request.method == "OPTIONS" and request.path in ("", "/negotiate"):
            await preflight(request, send)
        elif request.path == "/negotiate":
            await negotiate(request, send, self.options.authenticate, [t.name for t in self.transports], self._open)
        elif request.path == "/client.js":
            await respond(send, 200, _client_js(), "text/javascript; charset=utf-8",
                          [(b"cache-control", b"public, max-age=300")])
        elif request.path == "":
            await self._base(request, receive, send)
        else:
            await refuse(request, send, 404, "not found")

    async def _open(self, query: NegotiateRequest, user: str | None) -> ServerConnection | None:
        """Open a connection for a negotiate; None when this process holds as many as it may."""
        if len(self.registry) >= self.options.max_connections:
            return None
        conn = self.create(query.stateful_reconnect, user, version=query.version)
        await self.backplane.announce(self.name, conn.token, conn.id)
        return conn

    async def _base(self, request: Request, receive: Receive, send: Send) -> None:
        """``{base}?id=T``: look the token up, then dispatch on what it names and on the method."""
        token = request.query.get("id")
        if not token:
            await refuse(request, send, 400, "the id query parameter is required")
            return
        match await self.tokens.lookup(token, request):
            case Found(conn):
                await self._dispatch(conn, request, receive, send)
            case Lingering(conn):
                await self.endpoints.lingering(conn, send)
            case HeldElsewhere(token):
                await self.endpoints.forward(request, token, receive, send)
            case _:
                await self.endpoints.unknown(request, send)

    async def _dispatch(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        if request.method == "POST":
            await self.endpoints.post(conn, receive, send)
        elif request.method == "DELETE":
            await self.endpoints.delete(conn, send)
        elif request.method == "GET":
            await self.endpoints.stream(conn, request, receive, send)
        else:
            await refuse(request, send, 405, f"method {request.method} is not allowed")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def shutdown(self) -> None:
        """Close every connection (clients may reconnect elsewhere) and stop the ticker."""
        for conn in self.registry:
            conn.close("server shutting down")
        await self.ticker.stop()
