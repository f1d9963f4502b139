"""Origin policy and CORS: which pages may use the hub from another origin, and the headers that say so."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .asgi import STREAM_HEADER, Message, Request, Send, refuse, respond

log = logging.getLogger("gateway")


class OriginPolicy:
    """``allowed`` lists origins (``scheme://host:port``) besides the server's own; ``"*"`` allows any
    origin, without credentials."""

    __slots__ = ("allowed",)

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = frozenset(allowed)

    def allows(self, request: Request, origin: str) -> bool:
        """Whether a page of ``origin`` may use the hub (ForeverFrame asks it of its target origin too)."""
        if origin == request.own_origin or origin in self.allowed:
            return True
        return "*" in self.allowed

    async def refused(self, request: Request, send: Send) -> bool:
        """Answer 403 and return True when the request's Origin is not allowed."""
        origin = request.origin
        if origin is None or self.allows(request, origin):
            return False
        log.info("refused origin %r from %s", origin, request.client)
        # The page may read why (no credentials, nothing else): only this 403 carries its origin.
        readable = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
        await refuse(request, send, 403, f"origin {origin!r} is not allowed", readable)
        return True

    def cors(self, request: Request, send: Send) -> Send:
        """``send`` with the CORS headers added to the response start, for a request from another origin."""
        origin = request.origin
        if origin is None or origin == request.own_origin:
            return send
        headers = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin"),
                   (b"access-control-expose-headers", STREAM_HEADER)]
        if origin in self.allowed and origin != "*":  # never credentials beside a wildcard
            headers.append((b"access-control-allow-credentials", b"true"))

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        return cors_send


async def preflight(request: Request, send: Send) -> None:
    """Answer a CORS preflight (OPTIONS) for the base URL or negotiate."""
    requested = (request.header(b"access-control-request-headers") or "")
    await respond(send, 204, headers=[
        (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
        (b"access-control-allow-headers", requested.encode() or b"content-type"),
        (b"access-control-max-age", b"600"),
    ])
