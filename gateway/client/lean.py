"""The lean driver of a ``ClientSession``: callbacks only, for a load generator's many connections.

``HubClient`` runs a reader task per stream and a timer per connection; that is the right shape for
an application but too heavy for 19,000 idle connections. Here an idle connection is its session
and its asyncio Protocol (``gateway.client.protocols``): no task, no timer, no pending future. The
protocol (handshake, invocation ids, what to write) is the session's; the batching of POSTs, the
negotiate request and the transports' URLs are the streaming client's own helpers. The caller pings
(``ping``) on its own schedule, and there is no stateful reconnect. ``protocol`` is the hub protocol,
``"json"`` or ``"messagepack"`` (Binary: WebSockets and LongPolling only), as for ``HubClient``.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from ..protocol.errors import ProtocolError
from ..protocol.framing import ForeverFrameParser, SSEParser
from ..protocol.hubprotocols import PROTOCOLS
from ..protocol.negotiate import parse_negotiate_response
from ..protocol.session import ClientSession, ClientState, Payload
from .calls import Calls, OnInvocation, route
from .connection import negotiate_target
from .foreverframe import frame_params
from .http import Origin
from .posting import PostBatcher
from .protocols import HttpPool, HttpProtocol, LeanError, OnBytes, Poller, WsProtocol
from .sse import HEADERS as SSE_HEADERS
from .transport import transport_target

LIVE = frozenset({ClientState.CONNECTING, ClientState.CONNECTED})
POST_HEADERS = [("content-type", "text/plain;charset=UTF-8")]
BINARY_POST_HEADERS = [("content-type", "application/octet-stream")]


def _ignore(target: str, arguments: list[Any]) -> None:
    pass


class LeanClient:
    """One hub connection over one transport; subclasses open the stream and write to it.

    ``on_invocation(target, arguments)`` gets the server's calls; ``alive`` turns False when the
    connection ends; ``pings_received`` counts the server's keep-alives. ``protocol`` names the hub
    protocol; the session encodes and parses it, the driver only moves its text or bytes.
    """

    transport_name: ClassVar[str] = ""
    binary: ClassVar[bool] = False
    """Whether the transport carries a Binary hub protocol (MessagePack)."""
    __slots__ = ("origin", "pool", "on_invocation", "session", "token", "url", "_calls", "_handshake")

    def __init__(
        self, base: str, pool: HttpPool, on_invocation: OnInvocation | None = None, *, protocol: str = "json",
    ) -> None:
        hub_protocol = PROTOCOLS.get(protocol)
        if hub_protocol is None:
            raise ValueError(f"unknown hub protocol {protocol!r}; known: {list(PROTOCOLS)}")
        if hub_protocol.transfer_format == "Binary" and not self.binary:
            raise ValueError(f"{self.transport_name} carries text only; {protocol} needs WebSockets or LongPolling")
        self.origin = Origin(False, pool.host, pool.port, base, "")  # base: the hub's path, e.g. /hubs/echo
        self.pool = pool
        self.on_invocation = on_invocation or _ignore
        self.session = ClientSession(protocol=hub_protocol)
        self.token = ""
        self.url = ""
        """The transport's URL on the token (POSTs and polls), computed once."""
        self._calls = Calls(LeanError)
        self._handshake: asyncio.Future[None] | None = None

    @property
    def alive(self) -> bool:
        return self.session.state in LIVE

    @property
    def pings_received(self) -> int:
        return self.session.pings

    async def connect(self, timeout: float = 10.0) -> None:
        """Negotiate, open the stream, and complete the handshake (confirmed by its response)."""
        status, body = await self.pool.request("POST", negotiate_target(self.origin))
        if status != 200:
            raise LeanError(f"negotiate failed with {status}: {body[:200]!r}")
        self.token = parse_negotiate_response(body).token
        self.url = self._target()
        loop = asyncio.get_running_loop()
        self.session.start()
        self._handshake = handshake = loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._open()
                self._write(self.session.handshake(loop.time(), stateful=False))
                await handshake
        finally:
            self._handshake = None
            if handshake.done() and not handshake.cancelled():
                handshake.exception()  # failed with the stream's opening, which is what was raised


    async def invoke(self, target: str, *args: Any) -> Any:
        """Call a hub method and return its result (raises LeanError on an error completion)."""
        invocation_id, text = self.session.invocation(target, list(args), asyncio.get_running_loop().time())
        future = self._calls.expect(invocation_id)
        try:
            self._write(text)
            return await future
        finally:
            self._calls.forget(invocation_id)

    def send(self, target: str, *args: Any) -> None:
        """Call a hub method without waiting for (or asking for) a result."""
        self._write(self.session.message(target, list(args), asyncio.get_running_loop().time()))

    def ping(self) -> None:
        """The client's keep-alive (the server closes a connection silent for 30 s)."""
        if self.alive:
            self._write(self.session.ping(asyncio.get_running_loop().time()))

    def close(self) -> None:
        self.session.close()
        self._ended(None)

    # subclasses
    async def _open(self) -> None:
        raise NotImplementedError

    def _write(self, payload: Payload) -> None:
        raise NotImplementedError

    # shared
    def _target(self, **params: str) -> str:
        return transport_target(self.origin, self.token, **params)

    def _on_text(self, payload: Payload) -> None:
        """One transport message: text on JSON, bytes on MessagePack."""
        try:
            incoming = self.session.receive(payload, asyncio.get_running_loop().time())
        except ProtocolError as exc:
            self._ended(LeanError(f"protocol error from the server: {exc.message}"))
            return
        if incoming.handshake is not None:
            self._handshaken(incoming.handshake.error)
        if incoming.messages:
            route(incoming.messages, self._calls, self.on_invocation, self._closed_by_server)

    def _handshaken(self, error: str | None) -> None:
        handshake = self._handshake
        if handshake is not None and not handshake.done():
            if error is None:
                handshake.set_result(None)
            else:
                handshake.set_exception(LeanError(f"handshake refused: {error}"))

    def _closed_by_server(self, error: str | None) -> None:
        self._ended(LeanError(f"closed by the server: {error}"))

    def _ended(self, exc: Exception | None) -> None:
        if not self.session.finish(None if exc is None else str(exc)):
            return
        error = exc or LeanError("the connection ended")
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(error)
        self._calls.fail(error)


class WebSocketsLean(LeanClient):
    transport_name = "WebSockets"
    binary = True
    __slots__ = ("ws",)

    async def _open(self) -> None:
        self.ws = await WsProtocol.open(
            self.pool.host, self.pool.port, self.url, self._on_text, self._ended, on_bytes=self._on_text)

    def _write(self, payload: Payload) -> None:
        if not payload:
            return
        if isinstance(payload, str):
            self.ws.send_text(payload)  # JSON records, and the handshake request on either protocol
        else:
            self.ws.send_bytes(payload)

    def close(self) -> None:
        super().close()
        if hasattr(self, "ws"):
            self.ws.close()


class PostingLean(LeanClient):
    """SSE, ForeverFrame and LongPolling: POSTs over the shared pool, one at a time, batched."""

    __slots__ = ("stream", "_batcher")

    def __init__(
        self, base: str, pool: HttpPool, on_invocation: OnInvocation | None = None, *, protocol: str = "json",
    ) -> None:
        super().__init__(base, pool, on_invocation, protocol=protocol)
        self.stream: HttpProtocol | None = None
        self._batcher = PostBatcher(self._post, on_error=self._ended)

    def _write(self, payload: Payload) -> None:
        if payload:
            self._batcher.send(payload)

    async def _post(self, body: bytes) -> None:
        binary = self.session.protocol.transfer_format == "Binary" and self.session.state is ClientState.CONNECTED
        headers = BINARY_POST_HEADERS if binary else POST_HEADERS
        status, answer = await self.pool.request("POST", self.url, body, headers)
        if status != 200:
            raise LeanError(f"POST failed with {status}: {answer[:200]!r}")

    async def _open_stream(self, target: str, headers: list[tuple[str, str]], on_body: OnBytes) -> None:
        stream = await HttpProtocol.open(self.pool.host, self.pool.port)
        self.stream = stream
        status, _ = await stream.request("GET", target, b"", headers, on_body=on_body, on_end=self._stream_ended)
        if status != 200:
            raise LeanError(f"stream refused with {status}")

    def _stream_ended(self, exc: Exception | None) -> None:
        self._ended(exc or LeanError("the server ended the stream"))

    def _ended(self, exc: Exception | None) -> None:
        super()._ended(exc)
        self._batcher.retire()

    def close(self) -> None:
        super().close()
        if self.stream is not None:
            self.stream.close()


class ServerSentEventsLean(PostingLean):
    transport_name = "ServerSentEvents"
    __slots__ = ("_parser",)

    async def _open(self) -> None:
        self._parser = SSEParser()
        await self._open_stream(self.url, SSE_HEADERS, self._on_bytes)

    def _on_bytes(self, data: bytes) -> None:
        for event in self._parser.feed(data):
            self._on_text(event)


class ForeverFrameLean(PostingLean):
    transport_name = "ForeverFrame"
    __slots__ = ("_parser",)

    async def _open(self) -> None:
        self._parser = ForeverFrameParser()
        await self._open_stream(self._target(**frame_params(self.origin)), [("accept", "text/html")], self._on_bytes)

    def _on_bytes(self, data: bytes) -> None:
        for payload in self._parser.feed(data):
            if payload is None:
                self._ended(LeanError("the server ended the frame"))
            else:
                self._on_text(payload)


class LongPollingLean(PostingLean):
    """Polls on its own keep-alive connection: each answer is handled in a callback that polls again."""

    transport_name = "LongPolling"
    binary = True
    __slots__ = ()

    async def _open(self) -> None:
        stream = await HttpProtocol.open(self.pool.host, self.pool.port)
        self.stream = stream
        status, _ = await stream.request("GET", self.url)  # the first poll answers at once
        if status != 200:
            raise LeanError(f"first poll failed with {status}")
        Poller(stream, lambda: self.url, self._on_body, self._ended, lambda: self.alive).poll()

    def _on_body(self, body: bytes) -> None:
        self._on_text(body if self.session.protocol.transfer_format == "Binary" else body.decode())


LEAN_CLIENTS: dict[str, type[LeanClient]] = {
    c.transport_name: c for c in (WebSocketsLean, ServerSentEventsLean, ForeverFrameLean, LongPollingLean)
}
"""The lean client of each transport, by the transport's name."""
