"""The base URL's handlers, once the token is looked up: streams, POST, DELETE, forwarding, and the refusals.

Each one validates, looks up what it needs and dispatches; none knows about the others.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence

from ..backplane import Backplane
from ..backplane.messages import ForwardOp
from ..protocol import ProtocolError
from ..transports import Transport, recognize
from . import eager, metrics
from .asgi import CLOSE, STREAM_HEADER, ClientGone, Receive, Request, Send, read_body, refuse, respond, respond_error
from .connection import ServerConnection
from .limits import BadTokenLimiter, PendingLimiter
from .peers import TrustedProxies
from .settings import Settings

log = logging.getLogger("gateway")


class Endpoints:
    """Serves requests on ``{base}?id=T`` for the connections of one hub."""

    def __init__(
        self, hub: str, backplane: Backplane, transports: Sequence[Transport], settings: Settings, *,
        clock: Callable[[], float], proxies: TrustedProxies, pending: PendingLimiter,
    ) -> None:
        self.hub = hub
        self.backplane = backplane
        self.transports = tuple(transports)
        self._by_name = {transport.name: transport for transport in self.transports}
        self.max_body = settings.max_body
        self.send_timeout = settings.send_timeout
        self.clock = clock
        self.proxies = proxies
        self.pending = pending
        self.bad_tokens = BadTokenLimiter(settings.bad_token_limit, settings.bad_token_window,
                                          settings.bad_token_clients)

    def stream(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> Awaitable[None]:
        """A GET or WebSocket: the transport it asks for serves it, if this server offers that transport.
        A connection that just closed gets what was left for it (its Close message) in that framing.

        It returns the serving coroutine for the caller to await, so that no frame of its own stays alive for
        as long as the stream is held (a held stream's memory is mostly its frames)."""
        name = recognize(request)
        transport = self._by_name.get(name)
        if transport is None:
            return refuse(request, send, 400, f"{name} is not offered by this server")
        self.pending.discard(conn.id)
        return transport.serve(conn, request, receive, send)

    async def post(self, conn: ServerConnection, receive: Receive, send: Send) -> None:
        """The client-to-server half of SSE, ForeverFrame and LongPolling."""
        body = await self._post_body(conn, receive, send)
        if body is None:
            return
        data: str | bytes = body  # bytes before the handshake and on a Binary protocol
        if conn.core.handshaken and conn.core.protocol.transfer_format == "Text":
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:
                conn.close("the body is not valid UTF-8")
                await respond_error(send, 400, "the body is not valid UTF-8")
                return
        status, error = await receive_text(conn, data)
        if conn.core.has_output and conn.wake.is_set():
            await asyncio.sleep(0)  # a held poll woken for what this POST caused (a completion) answers first
        if error is None and conn.core.handshaken and not conn.core.attached and conn.core.generation:
            await respond(send, status, headers=[(STREAM_HEADER, b"none")])  # a stream was, and is gone
        else:
            await answer(send, status, error)

    async def _post_body(self, conn: ServerConnection, receive: Receive, send: Send) -> bytes | None:
        """The POST's body, or None once the POST is answered (or its client gone)."""
        try:
            body, rest = eager.start(read_body(receive, self.max_body))  # a body already here: no timer
            if rest is not None:
                async with asyncio.timeout(self.send_timeout):  # a body trickled in holds the POST slot
                    body = await rest
        except ClientGone:  # a POST cut mid-body is dropped whole; the client will send it again
            log.info("connection %s: a POST was cut before its body was complete", conn.id)
            return None
        except TimeoutError:
            log.warning("connection %s: a POST body took over %g s; dropped", conn.id, self.send_timeout)
            await respond_error(send, 408, "the request body took too long", CLOSE)
            return None
        if body is None:
            log.warning("connection %s closed: POST body over %d bytes", conn.id, self.max_body)
            conn.close(f"request body exceeds {self.max_body} bytes")
            await respond_error(send, 413, f"request body exceeds {self.max_body} bytes", CLOSE)
        return body

    async def delete(self, conn: ServerConnection, send: Send) -> None:
        log.info("connection %s: closed by DELETE", conn.id)
        conn.close(None)
        await respond(send, 202)

    async def forward(self, request: Request, token: str, receive: Receive, send: Send) -> None:
        """POST or DELETE for a connection another process holds: that process answers, the body's reading
        and the forwarding together within the send timeout."""
        try:
            async with asyncio.timeout(self.send_timeout):
                status, error = await self._forward_body(request, token, receive)
        except ClientGone:
            return
        except TimeoutError:
            log.warning("a forwarded %s took over %g s; dropped", request.method, self.send_timeout)
            status, error = 408, "the request took too long"
        if status == 404:
            await self.unknown(request, send)
        elif error is not None:
            await respond_error(send, status, error, CLOSE if status in (408, 413) else None)
        else:
            await respond(send, status)

    async def _forward_body(self, request: Request, token: str, receive: Receive) -> tuple[int, str | None]:
        """Read the body and forward it: (status, error); 404 when no process holds the connection after all."""
        body = await read_body(receive, self.max_body) if request.method == "POST" else b""
        if body is None:
            return 413, f"request body exceeds {self.max_body} bytes"
        result = await self.backplane.forward(self.hub, token, *_forwarded(request.method, body))
        return (404, None) if result is None else result

    async def unknown(self, request: Request, send: Send) -> None:
        """404 for a token nothing here knows; 429 once one client guessed too many. A POST or DELETE is
        answered before its body is read, and its socket closed."""
        headers = CLOSE if request.method in ("POST", "DELETE") else []
        address = self.proxies.client(request.scope)
        now = self.clock()
        wait = self.bad_tokens.blocked(address, now)
        if wait > 0:
            metrics.refuse("limits")
            log.warning("too many unknown connection tokens from %s: refused for %.0f s", address, wait)
            await refuse(request, send, 429, "too many requests with unknown connection tokens",
                         [(b"retry-after", str(max(1, round(wait))).encode()), *headers])
            return
        self.bad_tokens.miss(address, now)
        metrics.refuse("unknown_token")
        log.info("unknown or closed connection token from %s", address)
        await refuse(request, send, 404, "no connection with this id", headers or None)


def _forwarded(method: str, body: bytes) -> tuple[ForwardOp, str]:
    """What a forwarded request asks: a UTF-8 body as its text (its bytes are that text's UTF-8, for a
    Binary protocol), any other body in base64 ("binary"; a JSON connection's holder answers 400 to it)."""
    if method != "POST":
        return "delete", ""
    try:
        return "post", body.decode("utf-8")
    except UnicodeDecodeError:
        return "binary", base64.b64encode(body).decode("ascii")


async def receive_text(conn: ServerConnection, text: str | bytes) -> tuple[int, str | None]:
    """Feed a POST body (text, or bytes on a Binary protocol) to a connection, one POST at a time: (status, error)."""
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


async def answer(send: Send, status: int, error: str | None) -> None:
    """An empty response with ``status``, or an error body when there is an error."""
    if error is not None:
        await respond_error(send, status, error)
    else:
        await respond(send, status)
