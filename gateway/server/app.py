"""The ASGI app of one hub's server: routes a request to negotiate, the JS client, or the base URL's
endpoints, after the origin policy. It composes the server's parts and knows the hub only as a Handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources

from ..backplane import Backplane
from ..protocol import Limits
from ..protocol.negotiate import NegotiateRequest
from ..transports import BY_NAME, TRANSPORT_NAMES, Transport, TransportOptions
from . import compression, redact
from .asgi import Receive, Request, Scope, Send, refuse, respond
from .connection import ServerConnection
from .deadlines import Deadlines
from .endpoints import Endpoints
from .handler import Handler
from .lifecycle import Lifecycle
from .limits import BadTokenLimiter, PendingLimiter
from .lookup import Closed, Found, HeldElsewhere, Lingering, Tokens
from .negotiate import Authenticate, Refusal, negotiate
from .node import Node
from .origins import OriginPolicy, preflight
from .peers import TrustedProxies
from .pending import PendingExpiry
from .registry import Registry
from .routing import GatewayRoute
from .settings import Settings
from .stopping import on_stop
from .view import ConnectionsView

log = logging.getLogger("gateway")


CLIENT_FILES = {
    "/client.js": "gateway.js",
    "/client.msgpack.js": "gateway.msgpack.js",
    "/client.shared.js": "gateway.shared.js",
    "/client.worker.js": "gateway.worker.js",
}
"""The JS bundles each hub serves: the client (IIFE), its optional MessagePack and shared-mode entries (load
them after the client), and the SharedWorker script that shared mode starts (a stable URL per hub)."""


def _client_js(path: str) -> bytes:
    return resources.files("gateway").joinpath("static", CLIENT_FILES[path]).read_bytes()


def _offered(names: Iterable[str], options: TransportOptions) -> tuple[Transport, ...]:
    unknown = [t for t in names if t not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown transports {unknown}; known: {list(TRANSPORT_NAMES)}")
    return tuple(BY_NAME[t](options) for t in names)


def _checked(limits: Limits, name: str) -> Limits:
    """``limits``, after a warning for each lifetime invariant they break (see ``Limits``)."""
    for problem in limits.lifetime_problems():
        log.warning("limits of %s: %s", name, problem)
    return limits


class Server:
    """An ASGI app serving the connections of one hub; ``handler`` receives what they bring. ``Gateway``'s
    keyword arguments document the rest."""

    def __init__(
        self, handler: Handler, name: str, backplane: Backplane, settings: Settings, *,
        transports: Iterable[str] = TRANSPORT_NAMES, allowed_origins: Iterable[str] = (),
        authenticate: Authenticate | None = None, clock: Callable[[], float], trusted_proxies: Iterable[str] = (),
    ) -> None:
        redact.install()  # the server's access logs print URLs, and URLs carry tokens
        compression.install()  # permessage-deflate is declined: see server/compression.py
        self.name, self.settings, self.authenticate, self.clock = name, settings, authenticate, clock
        self.limits = _checked(settings.limits, name)
        self.origins = OriginPolicy(allowed_origins)
        self.transports = _offered(transports, TransportOptions(settings.poll_timeout, self.origin_allowed))
        self.registry = Registry(settings.max_groups_per_connection)
        self.connections = ConnectionsView(self.registry, tuple(t.name for t in self.transports), clock)
        self.backplane = backplane
        self.pending = PendingLimiter(settings.pending_timeout, settings.max_pending, settings.max_pending_per_client)
        self.expiry = PendingExpiry(self.pending, self.registry, clock)
        self.proxies = TrustedProxies(trusted_proxies)
        self.deadlines = Deadlines(clock)
        self.closed = Closed(settings.closed_linger)
        self.tokens = Tokens(name, self.registry, backplane, self.closed)
        self.lifecycle = Lifecycle(name, self.registry, backplane, handler, self.closed, limits=self.limits,
                                   clock=clock, deadlines=self.deadlines, pending=self.pending)
        self.endpoints = Endpoints(name, backplane, self.transports, settings, clock=clock, proxies=self.proxies,
                                   pending=self.pending)
        self.node = Node(self.registry, self.lifecycle.restore)
        backplane.register(name, self.node)
        self._started = False
        self.stopping = False  # the server is shutting down: no new connections

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
        """Send the keep-alives due at ``now``, close the connections whose deadlines passed, and expire
        pending connections.

        The gateway calls it itself, at each deadline; call it by hand only with an injected clock.
        """
        self.deadlines.run(now)
        while self.expiry.expire(now):
            pass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._start()
        request = Request(scope)
        if await self.origins.refused(request, send):
            return
        if scope["type"] == "http":
            send = self.origins.cors(request, send)
        await (await self._route(request, receive, send))

    async def _route(self, request: Request, receive: Receive, send: Send) -> Awaitable[None]:
        """The handler of ``request``, for the caller to await: routing leaves no frame behind while a stream is
        held (a held stream's memory is mostly its frames)."""
        if request.method == "OPTIONS" and request.path in ("", "/negotiate"):
            return preflight(request, send)
        if request.path == "/negotiate":
            return negotiate(request, send, self.authenticate, [t.name for t in self.transports], self._open)
        if request.path in CLIENT_FILES:
            return respond(send, 200, _client_js(request.path), "text/javascript; charset=utf-8",
                           [(b"cache-control", b"public, max-age=300")])
        if request.path == "":
            return await self._base(request, receive, send)
        return refuse(request, send, 404, "not found")

    async def _open(self, query: NegotiateRequest, user: str | None, request: Request) -> ServerConnection | Refusal:
        """Open a connection for a negotiate, unless the server stops or holds as many as it may."""
        busy = self.settings.busy_retry_after
        if self.stopping:
            return Refusal(503, "the server is shutting down", busy)
        if len(self.registry) - len(self.pending) >= self.settings.max_connections:
            return Refusal(503, "too many connections", busy)
        client = self.proxies.client(request.scope)
        refusal = self.expiry.refusal(client)
        if refusal is not None:
            log.info("negotiate refused (%d) for %s: %s", refusal.status, client, refusal.error)
            return refusal
        conn = self.create(query.stateful_reconnect, user, version=query.version)
        self.expiry.add(conn.id, client)
        await self.backplane.announce(self.name, conn.token, conn.id)
        return conn

    async def _base(self, request: Request, receive: Receive, send: Send) -> Awaitable[None]:
        """``{base}?id=T``: look the token up, then the handler of what it names and of the method."""
        token = request.query.get("id")
        if not token:
            return refuse(request, send, 400, "the id query parameter is required")
        match await self.tokens.lookup(token, request):
            case Found(conn):
                return self._dispatch(conn, request, receive, send)
            case Lingering(conn):  # closed: its stream carries the Close message, then ends
                return self.endpoints.stream(conn, request, receive, send)
            case HeldElsewhere(token):
                return self.endpoints.forward(request, token, receive, send)
            case _:
                return self.endpoints.unknown(request, send)

    def _dispatch(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> Awaitable[None]:
        if request.method == "POST":
            return self.endpoints.post(conn, receive, send)
        if request.method == "DELETE":
            return self.endpoints.delete(conn, send)
        if request.method == "GET":
            return self.endpoints.stream(conn, request, receive, send)
        return refuse(request, send, 405, f"method {request.method} is not allowed")

    async def _start(self) -> None:
        if not self._started and not self.stopping:
            self._started = True
            on_stop(self._server_stopping)
            await self.backplane.start()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.stopping = False
                await self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _server_stopping(self) -> None:
        """The process was asked to stop (SIGTERM, Ctrl+C): end every stream now, so the server can finish."""
        if not self.stopping:
            log.info("server stopping: closing %d connections of %s", len(self.registry), self.name)
            self.lifecycle.spawn(self.shutdown())

    async def shutdown(self) -> None:
        """Close every connection with a Close record that lets its client reconnect (elsewhere), refuse new
        ones, and stop the timers. The server calls it when it stops; it may be called again."""
        self.stopping = True
        for conn in self.registry:
            conn.close("server shutting down", allow_reconnect=True)
        self.deadlines.stop()
        self.expiry.stop()
