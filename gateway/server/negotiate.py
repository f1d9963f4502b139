"""Negotiate: ``POST {base}/negotiate`` admits a client (version, auth, capacity) and opens its connection."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..protocol import ProtocolError
from ..protocol.negotiate import NegotiateRequest, NegotiateResponse, parse_negotiate_query
from . import metrics
from .asgi import Request, Send, respond_error, respond_json
from .connection import ServerConnection

log = logging.getLogger("gateway")

Authenticate = Callable[[Request], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why negotiate opens no connection: an HTTP status, an error, and when to retry (seconds)."""

    status: int
    error: str
    retry_after: int


Open = Callable[[NegotiateRequest, str | None, Request], Awaitable[ServerConnection | Refusal]]


class Refused(Exception):
    """Raise from the auth hook to refuse a negotiate with 401 or 403."""

    def __init__(self, status: int = 401, message: str = "unauthorized") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def negotiate(
    request: Request, send: Send, authenticate: Authenticate | None, offered: Sequence[str], open_connection: Open,
) -> None:
    """Validate the query, authenticate, open a connection (or be refused: stopping, full), answer its ids."""
    if request.method != "POST":
        await respond_error(send, 405, "negotiate takes a POST")
        return
    try:
        query = parse_negotiate_query(request.query)
        user = await authenticate(request) if authenticate else None
    except (ProtocolError, Refused) as exc:
        metrics.refuse("auth" if isinstance(exc, Refused) else "malformed")
        log.info("negotiate refused (%d) for %s: %s", exc.status, request.client, exc.message)
        await respond_error(send, exc.status, exc.message)
        return
    conn = await open_connection(query, user, request)
    if isinstance(conn, Refusal):
        await respond_error(send, conn.status, conn.error, [(b"retry-after", str(conn.retry_after).encode())])
        return
    token = conn.token if query.version >= 1 else None
    response = NegotiateResponse(conn.id, token, query.version, query.listed(offered), query.stateful_reconnect)
    log.info("connection %s: negotiated v%d%s", conn.id, query.version,
             " with stateful reconnect" if query.stateful_reconnect else "")
    await respond_json(send, 200, response.to_json())
