"""The ASGI app of one hub's server: routes a request to negotiate, the JS client, or the base URL's
endpoints, after the origin policy. It composes the server's parts and knows the hub only as a Handler."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources

from ..backplane import Backplane, InProcessBackplane
from ..protocol import Limits
from ..protocol.negotiate import NegotiateRequest
from ..transports import BY_NAME, TRANSPORT_NAMES, Transport, TransportOptions
from . import compression, metrics, redact
from .asgi import Receive, Request, Scope, Send, refuse, respond
from .connection import ServerConnection
from .deadlines import Deadlines, grain
from .draining import RETRY_SOON, drain
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
from .wire import Wire, metered

log = logging.getLogger("gateway")

Opened = ServerConnection | Refusal

CLIENT_FILES = {
    "/client.js": "gateway.js",
    "/client.msgpack.js": "gateway.msgpack.js",
    "/client.trace.js": "gateway.trace.js",
    "/client.job.js": "gateway.job.js",
    "/client.shared.js": "gateway.shared.js",
    "/client.worker.js": "gateway.worker.js",
}
"""The JS bundles each hub serves: the client (IIFE), its optional entries (load them after the client):
MessagePack, trace context, the job view's ``<gateway-job>`` element and shared mode, and the SharedWorker
script that shared mode starts (a stable URL per hub)."""


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
        limits = self.limits
        self.deadlines = Deadlines(clock, grain(limits.keepalive_interval, limits.client_timeout,
                                                limits.handshake_timeout, limits.disconnect_timeout))
        self.closed = Closed(settings.closed_linger)
        self.tokens = Tokens(name, self.registry, backplane, self.closed)
        self.lifecycle = Lifecycle(name, self.registry, backplane, handler, self.closed, limits=self.limits,
                                   clock=clock, deadlines=self.deadlines, pending=self.pending)
        self.endpoints = Endpoints(name, backplane, self.transports, settings, clock=clock, proxies=self.proxies,
                                   pending=self.pending)
        self.node = Node(self.registry, self.lifecycle, functools.partial(backplane.publish, name))
        backplane.register(name, self.node)
        self._started = False
        self.stopping = False  # the server is shutting down: no new connections
        self.draining: asyncio.Task[int] | None = None  # handing the connections to other processes (drain())
        self.drain_timeout = 30.0
        """How long a drain on SIGTERM waits for the clients to resume on other processes."""
        metrics.watch(self)

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

    def live(self) -> Iterable[ServerConnection]:
        """The connections this process holds now (what the metrics count)."""
        return self.registry.by_id.values()

    def origin_allowed(self, request: Request, origin: str) -> bool:
        return self.origins.allows(request, origin)

    def route(self, path: str) -> GatewayRoute:
        """A Starlette route serving this gateway at ``path`` (e.g. ``/hubs/jobs``)."""
        return GatewayRoute(path, self)

    def create(self, stateful: bool, user: str | None, *, version: int = 1) -> ServerConnection:
        """A new connection of this process (what negotiate opens)."""
        return self.lifecycle.create(stateful, user, version=version)

    def cut(self, connection_id: str) -> bool:
        """End the stream of a connection (by its public id) as a network drop would, so that its client resumes
        it: for demos and tests of recovery. False when this process holds no such connection, or no stream of it
        is attached."""
        conn = self.registry.by_id.get(connection_id)
        return conn is not None and conn.cut()

    def disconnect(self, connection_id: str, reason: str | None = None) -> bool:
        """Close a connection of this process (by its public id) for good: its client gets a Close message with
        ``reason`` and does not reconnect. False when this process holds no such connection."""
        conn = self.registry.by_id.get(connection_id)
        if conn is None:
            return False
        log.info("connection %s: disconnected by the application (%s)", conn.id, reason or "no reason given")
        conn.close(reason)
        return True

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
        if not self._started:
            await self._start()
        request = Request(scope)
        if await self.origins.refused(request, send):
            metrics.refuse("origin")
            return
        if scope["type"] == "http":
            send = self.origins.cors(request, send)
        handler = await self._route(request, receive, send)
        del request  # a held stream keeps no request (its query, its headers)
        await handler

    async def _route(self, request: Request, receive: Receive, send: Send) -> Awaitable[None]:
        """The handler of ``request``, for the caller to await: routing leaves no frame behind while a stream is
        held (a held stream's memory is mostly its frames)."""
        if request.method == "OPTIONS" and request.path in ("", "/negotiate"):
            return preflight(request, send)
        if request.path == "/negotiate":
            return self._negotiate(request, receive, send)
        if request.path in CLIENT_FILES:
            return respond(send, 200, _client_js(request.path), "text/javascript; charset=utf-8",
                           [(b"cache-control", b"public, max-age=300")])
        if request.path == "":
            return await self._base(request, receive, send)
        return refuse(request, send, 404, "not found")

    def _negotiate(self, request: Request, receive: Receive, send: Send) -> Awaitable[None]:
        """Negotiate, its request and answer counted on the wire of the connection it opens."""
        wire = Wire()
        receive, send = metered(wire, request.scope, receive, send)

        async def open_connection(query: NegotiateRequest, user: str | None, request: Request) -> Opened:
            return await self._open(query, user, request, wire)

        return negotiate(request, send, self.authenticate, [t.name for t in self.transports], open_connection)

    async def _open(self, query: NegotiateRequest, user: str | None, request: Request, wire: Wire) -> Opened:
        """Open a connection for a negotiate, unless the server stops or holds as many as it may."""
        busy = self.settings.busy_retry_after
        if self.stopping or self.draining:
            metrics.refuse("stopping")
            return Refusal(503, "the server is shutting down", busy)
        if len(self.registry) - len(self.pending) >= self.settings.max_connections:
            metrics.refuse("limits")
            return Refusal(503, "too many connections", busy)
        client = self.proxies.client(request.scope)
        refusal = self.expiry.refusal(client)
        if refusal is not None:
            metrics.refuse("limits")
            log.info("negotiate refused (%d) for %s: %s", refusal.status, client, refusal.error)
            return refusal
        metrics.negotiates.add(1)
        conn = self.create(query.stateful_reconnect, user, version=query.version)
        conn.wire = wire
        self.expiry.add(conn.id, client)
        await self.backplane.announce(self.name, conn.token, conn.id)
        return conn

    async def _base(self, request: Request, receive: Receive, send: Send) -> Awaitable[None]:
        """``{base}?id=T``: look the token up, then the handler of what it names and of the method."""
        token = request.query.get("id")
        if not token:
            return refuse(request, send, 400, "the id query parameter is required")
        if self.draining and request.method == "GET":  # a stream: resume on another process (no claim here)
            return refuse(request, send, 503, "this process is draining: resume on another one", RETRY_SOON)
        match await self.tokens.lookup(token, request):
            case Found(conn):
                return self._dispatch(conn, request, receive, send)
            case Lingering(conn):  # closed: its stream carries the Close message, then ends
                return self.endpoints.stream(conn, request, *metered(conn.wire, request.scope, receive, send))
            case HeldElsewhere(token):
                return self.endpoints.forward(request, token, receive, send)
            case _:
                return self.endpoints.unknown(request, send)

    def _dispatch(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> Awaitable[None]:
        receive, send = metered(conn.wire, request.scope, receive, send)
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
        """The process was asked to stop (SIGTERM, Ctrl+C): with a shared backplane, drain (the connections
        move to other processes); else end every stream now, so the server can finish."""
        if self.stopping or self.draining:
            return
        if isinstance(self.backplane, InProcessBackplane):
            log.info("server stopping: closing %d connections of %s", len(self.registry), self.name)
            self.lifecycle.spawn(self.shutdown())
        else:
            self.draining = asyncio.ensure_future(self._drain(self.drain_timeout))

    async def _drain(self, timeout: float) -> int:
        """``drain`` when another process can take the connections over; else close them (allowing reconnect)."""
        peers = await self.backplane.peers()
        if not peers:
            log.info("server stopping: no other process to hand %d connections of %s to", len(self.registry), self.name)
            for conn in list(self.registry):
                conn.close("server shutting down", allow_reconnect=True)
            return 0
        log.info("server stopping: draining %d connections of %s to %d processes", len(self.registry), self.name,
                 peers)
        return await drain(self.registry, self.clock, timeout)

    async def drain(self, timeout: float = 30.0) -> int:
        """Stop taking negotiates and streams, end every stream so that its client resumes on another process
        (which takes the connection over through the backplane), and wait until none is left here or
        ``timeout`` passed. Returns how many are left; ``shutdown`` closes those. Calling it again waits on the
        same drain."""
        if self.draining is None:
            self.draining = asyncio.ensure_future(self._drain(timeout))
        return await asyncio.shield(self.draining)

    async def shutdown(self) -> None:
        """Close every connection with a Close record that lets its client reconnect (elsewhere), refuse new
        ones, and stop the timers; after a drain in progress, if any. The server calls it when it stops; it may
        be called again."""
        if self.draining is not None and not self.stopping:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.draining)
        self.stopping = True
        for conn in self.registry:
            conn.close("server shutting down", allow_reconnect=True)
        self.deadlines.stop()
        self.expiry.stop()
