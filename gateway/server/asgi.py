"""Small ASGI helpers: the request view the handlers need, and responses written in one place."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STREAM_HEADERS: list[tuple[bytes, bytes]] = [
    (b"cache-control", b"no-cache, no-store, no-transform"),
    (b"x-accel-buffering", b"no"),
    (b"content-encoding", b"identity"),
    (b"pragma", b"no-cache"),
]
CLOSE: list[tuple[bytes, bytes]] = [(b"connection", b"close")]
"""On an answer sent before the request's body was read to its end: the server closes the socket after it."""
STREAM_HEADER = b"x-gateway-stream"
"""On a POST's answer, ``none`` when no stream of the connection is attached: a client whose stream the server saw
end (a proxy's silent cut) resumes at once. Other clients ignore an unknown header."""


class Request:
    """The parts of an HTTP or WebSocket scope that the gateway reads."""

    __slots__ = ("scope", "method", "path", "query", "_headers")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope.get("method", "GET")
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        self.path = path.rstrip("/")
        self.query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Every header, names lower-cased (decoded on first use: a held stream need not keep them twice)."""
        if self._headers is None:
            self._headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope.get("headers", [])}
        return self._headers

    def header(self, name: bytes) -> str | None:
        """One header's value (``name`` lower-case, as ASGI servers give names), read from the scope without
        decoding the others."""
        for key, value in self.scope.get("headers", ()):
            if key == name:
                return str(value.decode("latin-1"))
        return None

    @property
    def origin(self) -> str | None:
        return self.header(b"origin")

    @property
    def own_origin(self) -> str:
        scheme = {"ws": "http", "wss": "https"}.get(self.scope.get("scheme", "http"), self.scope.get("scheme", "http"))
        return f"{scheme}://{self.header(b'host') or ''}"

    @property
    def client(self) -> str:
        client = self.scope.get("client")
        return f"{client[0]}:{client[1]}" if client else "-"


async def respond(
    send: Send, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    head = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond(send, status, json.dumps(value).encode(), "application/json", headers)


async def respond_error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await respond_json(send, status, {"error": message}, headers)


class ClientGone(Exception):
    """The client went away before its request body was complete: there is nothing to answer."""


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it exceeds ``limit`` bytes; ClientGone if it is cut short."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def wait_disconnect(receive: Receive) -> None:
    """Return when the client has gone away (the body, if any, is read and dropped)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def reject_websocket(scope: Scope, send: Send, status: int, message: str) -> None:
    """Refuse a WebSocket upgrade with an HTTP status and a JSON body where the server allows it."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps({"error": message}).encode()
        await send({
            "type": "websocket.http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})


async def refuse(
    request: Request, send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with an error, as a WebSocket rejection or an HTTP response, whichever the request is."""
    if request.scope["type"] == "websocket":
        await reject_websocket(request.scope, send, status, message)
    else:
        await respond_error(send, status, message, headers)
