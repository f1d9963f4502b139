"""Wire accounting: the bytes, frames and requests each connection costs on the network, both ways.

``metered`` wraps a request's ASGI ``receive`` and ``send`` so that what crosses them is counted into the
connection's ``Wire``: HTTP request and response heads (rebuilt from the scope and the response start, with the
``date`` and ``server`` headers uvicorn adds by default), chunked framing, bodies, and WebSocket frames with their
headers (a client's frames are masked: 4 bytes more). It is an estimate of what the ASGI server writes, close to what
a TCP capture sees; TCP, TLS and the server's own WebSocket pings are not in it.

The wrappers are partials of module functions, not closures, and a stream's ``receive`` is left as it is when it
carries nothing to count (a GET has no body) or when its reader counts what it gets (a WebSocket's, with
``ws_received``): an idle connection then holds no wrapper coroutine, and a few hundred bytes less.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import astuple, dataclass
from functools import partial
from http import HTTPStatus
from itertools import chain

from .asgi import Message, Receive, Scope, Send

SERVER_HEADERS = len(b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\n" b"server: uvicorn\r\n")
"""The headers the ASGI server adds to every response (uvicorn's defaults)."""
WS_ACCEPT = len(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") + SERVER_HEADERS
"""The head of the 101 response that accepts a WebSocket."""
CHUNK_END = len(b"0\r\n\r\n")
_PHRASES = {status.value: len(status.phrase) for status in HTTPStatus}
"""The length of each status's reason phrase."""


@dataclass(slots=True)
class Wire:
    """What one connection cost on the wire so far. ``frames``: WebSocket frames, or HTTP body chunks (each
    request or response body counts one, a streaming response one per chunk). ``requests``: HTTP requests, the
    WebSocket upgrade and negotiate included. ``messages``: the hub messages that carry data (invocations, stream
    items, completions, cancels), not the pings, acks, handshake and close records (those are overhead)."""

    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    requests: int = 0
    messages_in: int = 0
    messages_out: int = 0

    def counts(self) -> WireCounts:
        """A frozen snapshot (what ``gateway.connections`` shows)."""
        return WireCounts(*astuple(self))


@dataclass(frozen=True, slots=True)
class WireCounts:
    """A snapshot of a ``Wire``: the same fields, frozen."""

    bytes_in: int
    bytes_out: int
    frames_in: int
    frames_out: int
    requests: int
    messages_in: int
    messages_out: int


def request_head(scope: Scope) -> int:
    """The size of a request's line and headers: ``GET /path?query HTTP/1.1``, ``name: value`` lines, a blank line."""
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    size = len(scope.get("method", "GET")) + len(path) + len(scope.get("http_version", "1.1")) + 9 + 2
    if query:
        size += 1 + len(query)
    return size + _headers_size(scope.get("headers", ()))


def _headers_size(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """``name: value`` lines: names, values, and 4 bytes each for the colon, the space and the CRLF."""
    headers = list(headers)
    return sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)


def response_head(status: int, headers: list[tuple[bytes, bytes]], chunked: bool) -> int:
    """The size of a response's status line and headers as the ASGI server writes them."""
    size = 15 + _PHRASES.get(status, 0) + SERVER_HEADERS + 2  # "HTTP/1.1 200 " + phrase + CRLF, ..., blank line
    size += _headers_size(headers)
    if chunked:
        size += len(b"transfer-encoding: chunked\r\n")
    return size


def ws_frame(length: int, masked: bool) -> int:
    """A WebSocket frame carrying ``length`` payload bytes: 2 header bytes, 2 or 8 more for a long payload, and
    the 4-byte mask of a client's frame."""
    header = 2 if length < 126 else 4 if length < 65536 else 10
    return header + length + (4 if masked else 0)


def _size(data: str | bytes) -> int:
    if isinstance(data, bytes):
        return len(data)
    return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))


def metered(wire: Wire, scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """``receive`` and ``send`` of one request, counting into ``wire`` what crosses them. A WebSocket's
    ``receive`` comes back as it is: its reader counts each message with ``ws_received``."""
    wire.requests += 1
    wire.bytes_in += request_head(scope)
    if scope["type"] == "websocket":
        return receive, _WsSend(wire, send)
    chunked = [False]  # the response's framing, known at its start
    sender = partial(_http_send, wire, scope, chunked, send)
    if scope.get("method") in ("GET", "HEAD"):  # no body to count: spare an idle stream the wrapper
        return receive, sender
    return partial(_http_receive, wire, receive), sender


async def _http_receive(wire: Wire, receive: Receive) -> Message:
    message = await receive()
    body = message.get("body")
    if body:
        wire.frames_in += 1
        wire.bytes_in += len(body)
    return message


# The senders return the ASGI server's awaitable and count inline, with no coroutine of their own per write,
# which a fan-out pays once per recipient.
def _http_send(wire: Wire, scope: Scope, chunked: list[bool], send: Send, message: Message) -> Awaitable[None]:
    kind = message["type"]
    if kind == "http.response.body":  # the frequent one, inline: a streaming response's every chunk
        size = len(message.get("body", b""))
        if size:
            wire.frames_out += 1
        if chunked[0]:
            size += (len(hex(size)) + 2 if size else 0) + (0 if message.get("more_body", False) else CHUNK_END)
        wire.bytes_out += size  # a chunk: hex size, CRLF, data, CRLF
    elif kind == "http.response.start":
        status: int = message["status"]
        headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
        chunked[0] = (status not in (204, 304) and scope.get("method") != "HEAD"
                      and b"content-length" not in [name.lower() for name, _ in headers])
        wire.bytes_out += response_head(status, headers, chunked[0])
    return send(message)


def _count_body(wire: Wire, message: Message, chunked: bool) -> None:
    body: bytes = message.get("body", b"")
    size = len(body)
    if body:
        wire.frames_out += 1
        if chunked:
            size += len(b"%x\r\n\r\n" % size)
    if chunked and not message.get("more_body", False):
        size += CHUNK_END
    wire.bytes_out += size


def ws_received(wire: Wire, message: Message) -> None:
    """Count one message a WebSocket's ``receive`` gave: a client frame (masked), or its close."""
    kind = message["type"]
    if kind == "websocket.receive":
        data = message.get("text")
        size = len(data) if data is not None and data.isascii() else _size(message.get("bytes") or b""
                                                                          if data is None else data)
        wire.frames_in += 1
        wire.bytes_in += size + (6 if size < 126 else 8 if size < 65536 else 14)  # header and mask
    elif kind == "websocket.disconnect":
        wire.frames_in += 1
        wire.bytes_in += ws_frame(2, True)  # the client's close frame and its code


class _WsSend:
    """A WebSocket's ``send``, counting what it writes: held for the stream's life, so an object of two slots
    (a partial or a closure is four times its size)."""

    __slots__ = ("wire", "send")

    def __init__(self, wire: Wire, send: Send) -> None:
        self.wire, self.send = wire, send

    def __call__(self, message: Message) -> Awaitable[None]:
        wire = self.wire
        kind = message["type"]
        if kind == "websocket.send":
            data = message.get("text")
            wire.frames_out += 1
            size = len(data) if data is not None and data.isascii() else _size(message.get("bytes") or b""
                                                                              if data is None else data)
            wire.bytes_out += size + (2 if size < 126 else 4 if size < 65536 else 10)
        elif kind == "websocket.accept":
            wire.bytes_out += WS_ACCEPT + _headers_size(message.get("headers", ()))
        elif kind == "websocket.close":
            wire.frames_out += 1
            wire.bytes_out += ws_frame(2 + len(message.get("reason") or ""), False)
        elif kind == "websocket.http.response.start":
            wire.bytes_out += response_head(message["status"], list(message.get("headers", ())), False)
        elif kind == "websocket.http.response.body":
            _count_body(wire, message, False)
        return self.send(message)


__all__ = ["Wire", "WireCounts", "metered", "request_head", "response_head", "ws_frame", "ws_received"]
