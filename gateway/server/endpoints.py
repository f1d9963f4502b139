"""The base URL's handlers, once the token is looked up: streams, POST, DELETE, forwarding, and the refusals.

Each one validates, looks up what it needs and dispatches; none knows about the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from ..backplane import Backplane
from ..backplane.messages import ForwardOp
from ..protocol import ProtocolError
from ..transports import Transport, recognize
from .asgi import ClientGone, Receive, Request, Send, read_body, refuse, respond, respond_error
from .connection import ServerConnection
from .limits import BadTokenLimiter

log = logging.getLogger("gateway")


class Endpoints:
    """Serves requests on ``{base}?id=T`` for the connections of one hub."""

    def __init__(
        self, hub: str, backplane: Backplane, transports: Sequence[Transport], *, max_body: int,
        send_timeout: float, clock: Callable[[], float],
    ) -> None:
        self.hub = hub
        self.backplane = backplane
        self.transports = tuple(transports)
        self.max_body = max_body
        self.send_timeout = send_timeout
        self.clock = clock
        self.bad_tokens = BadTokenLimiter()

    async def stream(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        """A GET or WebSocket: the transport it asks for serves it, if this server offers that transport."""
        name = recognize(request)
        transport = next((t for t in self.transports if t.name == name), None)
        if transport is None:
            await refuse(request, send, 400, f"{name} is not offered by this server")
            return
        await transport.serve(conn, request, receive, send)

    async def post(self, conn: ServerConnection, receive: Receive, send: Send) -> None:
        """The client-to-server half of SSE, ForeverFrame and LongPolling."""
        body = await self._post_body(conn, receive, send)
        if body is None:
            return
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            conn.close("the body is not valid UTF-8")
            await respond_error(send, 400, "the body is not valid UTF-8")
            return
        await answer(send, *await receive_text(conn, text))

    async def _post_body(self, conn: ServerConnection, receive: Receive, send: Send) -> bytes | None:
        """The POST's body, or None once the POST is answered (or its client gone)."""
        try:
            async with asyncio.timeout(self.send_timeout):  # a body trickled in holds the POST slot
                body = await read_body(receive, self.max_body)
        except ClientGone:  # a POST cut mid-body is dropped whole; the client will send it again
            log.info("connection %s: a POST was cut before its body was complete", conn.id)
            return None
        except TimeoutError:
            log.warning("connection %s: a POST body took over %g s; dropped", conn.id, self.send_timeout)
            await respond_error(send, 408, "the request body took too long")
            return None
        if body is None:
            log.warning("connection %s closed: POST body over %d bytes", conn.id, self.max_body)
            conn.close(f"request body exceeds {self.max_body} bytes")
            await respond_error(send, 413, f"request body exceeds {self.max_body} bytes")
        return body

    async def delete(self, conn: ServerConnection, send: Send) -> None:
        log.info("connection %s: closed by DELETE", conn.id)
        conn.close(None)
        await respond(send, 202)

    @staticmethod
    async def lingering(conn: ServerConnection, send: Send) -> None:
        """A poll just after its connection closed gets what was left for it (the Close message), else 204."""
        text = conn.core.take(conn.now())
        await respond(send, 200 if text else 204, text.encode())

    async def forward(self, request: Request, token: str, receive: Receive, send: Send) -> None:
        """POST or DELETE for a connection another process holds: that process answers."""
        try:
            body = await read_body(receive, self.max_body) if request.method == "POST" else b""
        except ClientGone:
            return
        if body is None:
            await respond_error(send, 413, f"request body exceeds {self.max_body} bytes")
            return
        result = await self.backplane.forward(self.hub, token, *_forwarded(request.method, body))
        if result is None:
            await self.unknown(request, send)
            return
        await answer(send, *result)

    async def unknown(self, request: Request, send: Send) -> None:
        """404 for a token nothing here knows; 429 once one client guessed too many."""
        address = request.client.rsplit(":", 1)[0]
        now = self.clock()
        wait = self.bad_tokens.blocked(address, now)
        if wait > 0:
            log.warning("too many unknown connection tokens from %s: refused for %.0f s", address, wait)
            await refuse(request, send, 429, "too many requests with unknown connection tokens",
                         [(b"retry-after", str(max(1, round(wait))).encode())])
            return
        self.bad_tokens.miss(address, now)
        log.info("unknown or closed connection token from %s", request.client)
        await refuse(request, send, 404, "no connection with this id")


def _forwarded(method: str, body: bytes) -> tuple[ForwardOp, str]:
    """What a forwarded request asks: the holder, if any, answers 400 to a body that is not UTF-8."""
    op: ForwardOp = "post" if method == "POST" else "delete"
    try:
        return op, body.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid", ""


async def receive_text(conn: ServerConnection, text: str) -> tuple[int, str | None]:
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


async def answer(send: Send, status: int, error: str | None) -> None:
    """An empty response with ``status``, or an error body when there is an error."""
    if error is not None:
        await respond_error(send, status, error)
    else:
        await respond(send, status)
