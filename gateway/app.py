"""The ASGI app of one hub: negotiate, streams, POST and DELETE, CORS. Thin handlers:
validate, look up, dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from typing import Any

from . import compression, redact
from .asgi import (
    ClientGone,
    Message,
    Receive,
    Request,
    Scope,
    Send,
    read_body,
    reject_websocket,
    respond,
    respond_error,
    respond_json,
)
from .backplane import Backplane, InProcessBackplane, Target
from .connection import ServerConnection
from .deadlines import Deadlines
from .hub import Hub, HubClients, HubDispatcher
from .limits import BadTokenLimiter, PendingLimiter
from .peers import TrustedProxies
from .protocol import Connection, Limits, ProtocolError
from .protocol.negotiate import NegotiateResponse, parse_negotiate_query
from .registry import Registry
from .routing import GatewayRoute
from .settings import Settings
from .stopping import on_stop
from .transports import BY_NAME, TRANSPORT_NAMES, TRANSPORTS, Transport, TransportOptions
from .view import ConnectionsView

log = logging.getLogger("gateway")

CLOSE = [(b"connection", b"close")]
"""On an answer sent before the request's body was read to its end: the server closes the socket after it."""
STREAM_HEADER = b"x-gateway-stream"
"""On a POST's answer, ``none`` when no stream of the connection is attached: a client whose stream the server saw
end (a proxy's silent cut) resumes at once. Other clients ignore an unknown header."""

Authenticate = Callable[[Request], Awaitable[str | None]]
DEFAULT_SETTINGS = Settings()


class Refused(Exception):
    """Raise from the auth hook to refuse a negotiate with 401 or 403."""

    def __init__(self, status: int = 401, message: str = "unauthorized") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _checked(limits: Limits, name: str) -> Limits:
    """``limits``, after a warning for each lifetime invariant they break (see ``Limits``)."""
    for problem in limits.lifetime_problems():
        log.warning("limits of %s: %s", name, problem)
    return limits


def _client_js() -> bytes:
    return resources.files("gateway").joinpath("static/gateway.js").read_bytes()


class Gateway:
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
        unknown = [t for t in transports if t not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown transports {unknown}; known: {list(TRANSPORT_NAMES)}")
        self.name = name or hub.__name__
        redact.install()  # the server's access logs print URLs, and URLs carry tokens
        self.settings = settings
        compression.install()  # permessage-deflate is declined: see gateway/compression.py
        self.allowed_origins = frozenset(allowed_origins)
        self._options = TransportOptions(poll_timeout=settings.poll_timeout, origin_allowed=self.origin_allowed)
        self.transports: tuple[Transport, ...] = tuple(BY_NAME[t](self._options) for t in transports)
        self._recognizers: tuple[Transport, ...] = tuple(t(self._options) for t in TRANSPORTS)
        self.limits = _checked(settings.limits, self.name)
        self.authenticate = authenticate
        self.clock = clock
        self.registry = Registry(settings.max_groups_per_connection)
        self.connections = ConnectionsView(self.registry, tuple(t.name for t in self.transports), clock)
        self.bad_tokens = BadTokenLimiter(settings.bad_token_limit, settings.bad_token_window,
                                          settings.bad_token_clients)
        self.pending = PendingLimiter(settings.pending_timeout, settings.max_pending, settings.max_pending_per_client)
        self.proxies = TrustedProxies(trusted_proxies)
        self.backplane: Backplane = backplane or InProcessBackplane()
        self.backplane.register(self.name, self)
        self.clients = HubClients(self._publish)
        self.dispatcher = HubDispatcher(hub, self.name, self.backplane, self._publish)
        self.deadlines = Deadlines(clock)
        self._lingering: dict[str, ServerConnection] = {}
        self._started = False
        self._expirer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._forgotten: list[str] = []  # tokens of closed connections, for the backplane to forget
        self.stopping = False  # the server is shutting down: no new connections

    # --- public ------------------------------------------------------------------------------

    def route(self, path: str) -> GatewayRoute:
        """A Starlette route serving this gateway at ``path`` (e.g. ``/hubs/jobs``)."""
        return GatewayRoute(path, self)

    async def _publish(self, target: Target, record: str) -> None:
        await self.backplane.publish(self.name, target, record)

    def origin_allowed(self, request: Request, origin: str) -> bool:
        if origin == request.own_origin or origin in self.allowed_origins:
            return True
        return "*" in self.allowed_origins

    # --- the local node a backplane delivers to --------------------------------------------------

    def deliver(self, target: Target, record: str) -> int:
        return self.registry.deliver(target, record)

    def group_add(self, connection_id: str, group: str) -> bool:
        return self.registry.group_add(connection_id, group)

    def group_remove(self, connection_id: str, group: str) -> bool:
        return self.registry.group_remove(connection_id, group)

    def export_connection(self, connection_id: str) -> dict[str, Any] | None:
        """Hand a connection over to another process: its state, and it is gone from here."""
        conn = self.registry.by_id.get(connection_id)
        if conn is None:
            return None
        state = {"id": conn.id, "token": conn.token, "user": conn.user, "groups": sorted(conn.groups),
                 "core": conn.core.snapshot()}
        self.registry.remove(conn)
        conn.hand_over()
        log.info("connection %s: handed over to another process", conn.id)
        return state

    def adopt_connection(self, state: dict[str, Any], ops: list[dict[str, Any]]) -> None:
        """Take over a connection handed over by another process, then apply what came meanwhile."""
        core = Connection.restore(state["core"], self.clock(), self.limits)
        conn = ServerConnection(state["id"], state["token"], core, self.clock, self.dispatcher, self._closed,
                                state["user"], self.deadlines.schedule)
        self.registry.add(conn)
        conn.reschedule()
        for group in state["groups"]:
            self.registry.group_add(conn.id, group)
        for op in ops:
            if op["k"] == "send":
                kind, names, exclude = op["t"]
                target = Target(kind, tuple(names), tuple(exclude))
                if self.registry.targets(target, conn):
                    conn.push(op["r"])
            elif op.get("c") == conn.id:
                (self.registry.group_add if op["k"] == "gadd" else self.registry.group_remove)(conn.id, op["g"])

    async def forwarded(self, connection_id: str, op: str, body: str) -> tuple[int, str | None]:
        """A POST or DELETE that reached another process, for a connection held here."""
        conn = self.registry.by_id.get(connection_id)
        if conn is None:
            return 410, None
        if op == "delete":
            conn.close(None)
            return 202, None
        if op == "invalid":
            conn.close("the body is not valid UTF-8")
            return 400, "the body is not valid UTF-8"
        return await self._receive(conn, body)

    # --- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._start()
        request = Request(scope)
        origin = request.origin
        if origin is not None and not self.origin_allowed(request, origin):
            log.info("refused origin %r from %s", origin, request.client)
            # The page may read why (no credentials, nothing else): only this 403 carries its origin.
            readable = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
            await self._refuse(request, send, 403, f"origin {origin!r} is not allowed", readable)
            return
        if scope["type"] == "http":
            send = self._with_cors(request, send)
        if request.path == "/negotiate":
            await self._negotiate(request, receive, send)
        elif request.path == "/client.js":
            await respond(send, 200, _client_js(), "text/javascript; charset=utf-8",
                          [(b"cache-control", b"public, max-age=300")])
        elif request.path == "":
            await self._base(request, receive, send)
        else:
            await self._refuse(request, send, 404, "not found")

    async def _refuse(
        self, request: Request, send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        if request.scope["type"] == "websocket":
            await reject_websocket(request.scope, send, status, message)
        else:
            await respond_error(send, status, message, headers)

    def _with_cors(self, request: Request, send: Send) -> Send:
        origin = request.origin
        if origin is None or origin == request.own_origin:
            return send
        headers = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin"),
                   (b"access-control-expose-headers", STREAM_HEADER)]
        if origin in self.allowed_origins and origin != "*":  # never credentials beside a wildcard
            headers.append((b"access-control-allow-credentials", b"true"))

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        return cors_send

    async def _base(self, request: Request, receive: Receive, send: Send) -> None:
        if request.method == "OPTIONS":
            requested = request.headers.get("access-control-request-headers", "")
            await respond(send, 204, headers=[
                (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                (b"access-control-allow-headers", requested.encode() or b"content-type"),
                (b"access-control-max-age", b"600"),
            ])
            return
        token = request.query.get("id")
        if not token:
            await self._refuse(request, send, 400, "the id query parameter is required")
            return
        conn = self.registry.by_token.get(token)
        if conn is None and request.method == "GET" and await self.backplane.claim(self.name, token):
            conn = self.registry.by_token.get(token)
        if conn is None and request.method in ("POST", "DELETE"):
            await self._forward(request, token, receive, send)
            return
        if conn is None and token in self._lingering and request.method == "GET":
            conn = self._lingering.pop(token)  # closed: its stream carries the Close message, then ends
        if conn is None:
            await self._unknown_token(request, send)
            return
        if request.method == "POST":
            await self._post(conn, receive, send)
        elif request.method == "DELETE":
            log.info("connection %s: closed by DELETE", conn.id)
            conn.close(None)
            await respond(send, 202)
        elif request.method == "GET":
            await self._stream(conn, request, receive, send)
        else:
            await respond_error(send, 405, f"method {request.method} is not allowed")

    async def _forward(self, request: Request, token: str, receive: Receive, send: Send) -> None:
        """POST or DELETE for a token not held here. An unknown one is answered (404/429) before any of the
        body is read, and the socket is closed; a connection another process holds is answered by that process,
        the body's reading and the forwarding together within the send timeout."""
        if not await self.backplane.held_elsewhere(self.name, token):
            await self._unknown_token(request, send, CLOSE)
            return
        try:
            async with asyncio.timeout(self.limits.send_timeout):
                status, error = await self._forward_body(request, token, receive)
        except ClientGone:
            return
        except TimeoutError:
            log.warning("a forwarded %s took over %g s; dropped", request.method, self.limits.send_timeout)
            status, error = 408, "the request took too long"
        if status == 404:
            await self._unknown_token(request, send, CLOSE)
        elif error is not None:
            await respond_error(send, status, error, CLOSE if status in (408, 413) else None)
        else:
            await respond(send, status)

    async def _forward_body(self, request: Request, token: str, receive: Receive) -> tuple[int, str | None]:
        """Read the body and forward it: (status, error); 404 when no process holds the connection after all."""
        body = await read_body(receive, self.settings.max_body) if request.method == "POST" else b""
        if body is None:
            return 413, f"request body exceeds {self.settings.max_body} bytes"
        op = request.method.lower()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            op, text = "invalid", ""  # the holder, if any, answers 400; else the token is unknown
        result = await self.backplane.forward(self.name, token, op, text)
        return (404, None) if result is None else result

    async def _unknown_token(
        self, request: Request, send: Send, headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        address = self.proxies.client(request.scope)
        now = self.clock()
        wait = self.bad_tokens.blocked(address, now)
        if wait > 0:
            log.warning("too many unknown connection tokens from %s: refused for %.0f s", address, wait)
            await self._refuse(request, send, 429, "too many requests with unknown connection tokens",
                               [(b"retry-after", str(max(1, round(wait))).encode()), *(headers or ())])
            return
        self.bad_tokens.miss(address, now)
        log.info("unknown or closed connection token from %s", address)
        await self._refuse(request, send, 404, "no connection with this id", headers)

    async def _stream(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        kind = next(t for t in self._recognizers if t.accepts(request))
        transport = next((t for t in self.transports if t.name == kind.name), None)
        if transport is None:
            await self._refuse(request, send, 400, f"{kind.name} is not offered by this server")
            return
        self.pending.discard(conn.id)
        await transport.serve(conn, request, receive, send)

    async def _post(self, conn: ServerConnection, receive: Receive, send: Send) -> None:
        try:
            async with asyncio.timeout(self.limits.send_timeout):  # a body trickled in holds the POST slot
                body = await read_body(receive, self.settings.max_body)
        except ClientGone:  # a POST cut mid-body is dropped whole; the client will send it again
            log.info("connection %s: a POST was cut before its body was complete", conn.id)
            return
        except TimeoutError:
            log.warning("connection %s: a POST body took over %g s; dropped", conn.id, self.limits.send_timeout)
            await respond_error(send, 408, "the request body took too long", CLOSE)
            return
        if body is None:
            log.warning("connection %s closed: POST body over %d bytes", conn.id, self.settings.max_body)
            conn.close(f"request body exceeds {self.settings.max_body} bytes")
            await respond_error(send, 413, f"request body exceeds {self.settings.max_body} bytes", CLOSE)
            return
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            conn.close("the body is not valid UTF-8")
            await respond_error(send, 400, "the body is not valid UTF-8")
            return
        status, error = await self._receive(conn, text)
        if error is not None:
            await respond_error(send, status, error)
        elif conn.core.handshaken and not conn.core.attached and conn.core.generation:  # a stream was, and is gone
            await respond(send, status, headers=[(STREAM_HEADER, b"none")])
        else:
            await respond(send, status)

    @staticmethod
    async def _receive(conn: ServerConnection, text: str) -> tuple[int, str | None]:
        """Feed a POST body to a connection, one POST at a time: (status, error)."""
        if conn.posting:
            return 409, "another POST is in progress for this connection"
        conn.posting = True
        try:
            await conn.receive(text)
        except ProtocolError as exc:
            log.warning("connection %s closed: %s", conn.id, exc.message)
            conn.close(exc.message)
            return exc.status, exc.message
        finally:
            conn.posting = False
        return 200, None

    async def _negotiate(self, request: Request, receive: Receive, send: Send) -> None:
        if request.method == "OPTIONS":
            await self._base(request, receive, send)
            return
        if request.method != "POST":
            await respond_error(send, 405, "negotiate takes a POST")
            return
        try:
            query = parse_negotiate_query(request.query)
            user = await self.authenticate(request) if self.authenticate else None
        except ProtocolError as exc:
            await respond_error(send, exc.status, exc.message)
            return
        except Refused as exc:
            log.info("negotiate refused (%d) for %s: %s", exc.status, request.client, exc.message)
            await respond_error(send, exc.status, exc.message)
            return
        if self.stopping:
            await respond_error(send, 503, "the server is shutting down",
                                [(b"retry-after", str(self.settings.busy_retry_after).encode())])
            return
        client = self.proxies.client(request.scope)
        if not await self._admit(client, send):
            return
        conn = self._create(query.stateful_reconnect, user, version=query.version)
        self.pending.add(conn.id, client, self.clock())
        self._pending_added()
        await self.backplane.announce(self.name, conn.token, conn.id)
        response = NegotiateResponse(
            conn.id, conn.token if query.version >= 1 else None, query.version,
            tuple(t.name for t in self.transports), query.stateful_reconnect,
        )
        log.info("connection %s: negotiated v%d%s", conn.id, query.version,
                 " with stateful reconnect" if query.stateful_reconnect else "")
        await respond_json(send, 200, response.to_json())

    async def _admit(self, client: str, send: Send) -> bool:
        """Whether one more connection may be negotiated: live ones and pending ones have caps of their own."""
        if len(self.registry) - len(self.pending) >= self.settings.max_connections:
            retry_after = str(self.settings.busy_retry_after).encode()
            await respond_error(send, 503, "too many connections", [(b"retry-after", retry_after)])
            return False
        refused = self.pending.refused(client)
        if refused is not None:
            status, error = refused
            log.info("negotiate refused (%d) for %s: %s", status, client, error)  # info: a flood of these is likely
            retry = str(max(1, math.ceil(self.pending.lifetime))).encode()
            await respond_error(send, status, error, [(b"retry-after", retry)])
            return False
        return True

    def _create(self, stateful: bool, user: str | None, *, version: int = 1) -> ServerConnection:
        """A new connection; in negotiate version 0 its id is its token, as the spec has it."""
        connection_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(24) if version >= 1 else connection_id
        core = Connection(self.clock(), stateful=stateful, limits=self.limits)
        conn = ServerConnection(
            connection_id, token, core, self.clock, self.dispatcher, self._closed, user, self.deadlines.schedule,
        )
        self.registry.add(conn)
        conn.reschedule()
        return conn

    def _closed(self, conn: ServerConnection) -> None:
        handshaken = conn.id in self.registry.by_id and conn.core.close_reason != "handshake timeout"
        self.registry.remove(conn)
        self.pending.discard(conn.id)
        self.deadlines.discard(conn)
        if conn.stream is None and conn.core.has_output:  # no stream to carry the Close message: keep it a while
            self._linger(conn)
        self._forgotten.append(conn.token)
        if len(self._forgotten) == 1:  # one task drains them all: a burst of closes spawns one task, not thousands
            self._spawn(self._forget())
        log.info("connection %s: closed (%s)", conn.id, conn.core.close_reason or "normal")
        if handshaken:
            self._spawn(self.dispatcher.disconnected(conn, conn.core.close_reason))

    async def _forget(self) -> None:
        while self._forgotten:
            batch, self._forgotten = self._forgotten, []
            for token in batch:
                await self.backplane.forget(self.name, token)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _linger(self, conn: ServerConnection) -> None:
        self._lingering[conn.token] = conn
        with contextlib.suppress(RuntimeError):  # no running loop: nothing will poll for it either
            asyncio.get_running_loop().call_later(self.settings.closed_linger, self._lingering.pop, conn.token, None)

    # --- time --------------------------------------------------------------------------------

    async def _start(self) -> None:
        if not self._started and not self.stopping:
            self._started = True
            on_stop(self._server_stopping)
            await self.backplane.start()

    def _pending_added(self) -> None:
        """A pending connection was made: make sure one task is there to expire pending connections."""
        if self._expirer is None or self._expirer.done():
            self._expirer = asyncio.ensure_future(self._expire_pending_forever())

    async def _expire_pending_forever(self) -> None:
        """Close pending connections as their lifetime ends, in batches with the event loop free in between;
        the task ends once none is left."""
        while len(self.pending):
            await asyncio.sleep(min(1.0, self.pending.lifetime / 4))
            while self._expire_pending(self.clock()):
                await asyncio.sleep(0)
        self._expire_pending(self.clock())

    def _expire_pending(self, now: float, batch: int = 256) -> bool:
        """Close up to ``batch`` pending connections whose lifetime is over; True if more are due."""
        for connection_id in self.pending.expired(now, batch):
            conn = self.registry.by_id.get(connection_id)
            if conn is not None:  # _closed logs it, with the connection id
                conn.close("negotiated but never connected")
        if self.pending.due(now):
            return True
        if self.pending.shrunk():  # after a burst, give the tables' memory back
            self.registry.compact()
        return False

    def tick(self, now: float) -> None:
        """Send the keep-alives due at ``now``, close the connections whose deadlines passed, and expire
        pending connections.

        The gateway calls it itself, at each deadline; call it by hand only with an injected clock.
        """
        self.deadlines.run(now)
        while self._expire_pending(now):
            pass

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
            self._spawn(self.shutdown())

    async def shutdown(self) -> None:
        """Close every connection with a Close record that lets its client reconnect (elsewhere), refuse new
        ones, and stop the ticker. The server calls it when it stops; it may be called again."""
        self.stopping = True
        for conn in self.registry:
            conn.close("server shutting down", allow_reconnect=True)
        self.deadlines.stop()
        if self._expirer is not None:
            self._expirer.cancel()
