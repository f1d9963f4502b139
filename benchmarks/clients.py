"""One lean client per target, all with the same small surface, for the load generator.

Every client is driven by asyncio Protocol callbacks (``gateway.client.protocols``): while idle it
owns no task and no pending future. The gateway's clients are the project's own lean client
(``gateway.client.lean``, the hub session driven by callbacks), on the JSON hub protocol and, for the
``-mp`` targets, on MessagePack (same calls, same messages); the raw ones speak a bare echo; the
Socket.IO ones Engine.IO v4 / Socket.IO v5 over the same h11 and wsproto machinery (python-socketio's
own AsyncClient is not used: it needs aiohttp and a task per connection).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import Callable
from typing import Any, ClassVar

from gateway.client.lean import LEAN_CLIENTS, POST_HEADERS, LeanClient
from gateway.client.posting import PostBatcher
from gateway.client.protocols import HttpPool, HttpProtocol, LeanError, Poller, WsProtocol
from gateway.protocol.framing import SSEParser

OnBurst = Callable[[dict[str, Any]], None]


def _ignore(data: dict[str, Any]) -> None:
    pass


class BenchClient:
    """The surface the load generator drives: connect, echo, join a group, keep alive, close."""

    target: ClassVar[str]
    keepalive_needed: ClassVar[bool] = False
    __slots__ = ("pool", "on_burst")

    def __init__(self, pool: HttpPool, on_burst: OnBurst = _ignore) -> None:
        self.pool = pool
        self.on_burst = on_burst

    @property
    def alive(self) -> bool:
        raise NotImplementedError

    async def connect(self) -> None:
        raise NotImplementedError

    async def echo(self, value: str) -> str:
        raise NotImplementedError

    async def join(self, group: str) -> None:
        raise NotImplementedError

    def keepalive(self) -> None:
        """The client's own heartbeat, called every 15 s (only where the protocol asks the client for one)."""

    def close(self) -> None:
        raise NotImplementedError


# --- the gateway ----------------------------------------------------------------------------------


class GatewayClient(BenchClient):
    transport: ClassVar[str]
    protocol: ClassVar[str] = "json"
    keepalive_needed = True
    __slots__ = ("hub",)

    def __init__(self, pool: HttpPool, on_burst: OnBurst = _ignore) -> None:
        super().__init__(pool, on_burst)
        self.hub: LeanClient = LEAN_CLIENTS[self.transport](
            "/hubs/echo", pool, self._on_invocation, protocol=self.protocol)

    def _on_invocation(self, target: str, arguments: list[Any]) -> None:
        if target == "burst":
            self.on_burst(arguments[0])

    @property
    def alive(self) -> bool:
        return self.hub.alive

    async def connect(self) -> None:
        await self.hub.connect()

    async def echo(self, value: str) -> str:
        result: str = await self.hub.invoke("Echo", value)
        return result

    async def join(self, group: str) -> None:
        await self.hub.invoke("Join", group)

    def keepalive(self) -> None:
        self.hub.ping()

    def close(self) -> None:
        self.hub.close()


def _gateway(transport: str, target: str, protocol: str = "json") -> type[GatewayClient]:
    # A long poll is itself a sign of life (the server counts each poll), so, like SignalR's
    # ``inherentKeepAlive``, the long-polling client sends no pings.
    suffix = "MessagePack" if protocol == "messagepack" else ""
    return type(f"Gateway{transport}{suffix}Client", (GatewayClient,), {
        "transport": transport, "target": target, "protocol": protocol,
        "keepalive_needed": transport != "LongPolling", "__slots__": ()})


# --- raw Starlette endpoints (the floor) ----------------------------------------------------------


class _Replies:
    """A FIFO of waiters for replies that come back in order on one stream."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[str]] = []

    def expect(self) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        return future

    def reply(self, text: str) -> None:
        if self.waiters:
            future = self.waiters.pop(0)
            if not future.done():
                future.set_result(text)

    def fail(self, exc: Exception) -> None:
        for future in self.waiters:
            if not future.done():
                future.set_exception(exc)
        self.waiters = []


class RawWsClient(BenchClient):
    """``/raw/ws``: text echoed back; ``join:G`` answered ``joined``; ``ping`` is the server's heartbeat."""

    target = "raw-ws"
    __slots__ = ("ws", "_alive", "_replies")

    def __init__(self, pool: HttpPool, on_burst: OnBurst = _ignore) -> None:
        super().__init__(pool, on_burst)
        self._alive = False
        self._replies = _Replies()

    @property
    def alive(self) -> bool:
        return self._alive

    async def connect(self) -> None:
        self.ws = await WsProtocol.open(self.pool.host, self.pool.port, "/raw/ws", self._on_text, self._on_end)
        self._alive = True

    def _on_text(self, text: str) -> None:
        if text.startswith('{"i"'):
            self.on_burst(json.loads(text))
        elif text != "ping":
            self._replies.reply(text)

    def _on_end(self, exc: Exception | None) -> None:
        self._alive = False
        self._replies.fail(LeanError(f"closed: {exc}"))

    async def echo(self, value: str) -> str:
        future = self._replies.expect()
        self.ws.send_text(value)
        return await future

    async def join(self, group: str) -> None:
        future = self._replies.expect()
        self.ws.send_text(f"join:{group}")
        await future

    def close(self) -> None:
        self._alive = False
        self.ws.close()


class RawSseClient(BenchClient):
    """``GET /raw/sse?id=C`` streams; ``POST /raw/sse?id=C`` comes back as one event; a comment is the heartbeat."""

    target = "raw-sse"
    __slots__ = ("stream", "cid", "_alive", "_parser", "_replies")

    def __init__(self, pool: HttpPool, on_burst: OnBurst = _ignore) -> None:
        super().__init__(pool, on_burst)
        self.cid = secrets.token_urlsafe(12)
        self._alive = False
        self._parser = SSEParser()
        self._replies = _Replies()

    @property
    def alive(self) -> bool:
        return self._alive

    async def connect(self) -> None:
        self.stream = await HttpProtocol.open(self.pool.host, self.pool.port)
        status, _ = await self.stream.request(
            "GET", f"/raw/sse?id={self.cid}", b"", [("accept", "text/event-stream")],
            on_body=self._on_bytes, on_end=self._on_end)
        if status != 200:
            raise LeanError(f"raw SSE refused with {status}")
        self._alive = True

    def _on_bytes(self, data: bytes) -> None:
        for event in self._parser.feed(data):
            if event.startswith('{"i"'):
                self.on_burst(json.loads(event))
            else:
                self._replies.reply(event)

    def _on_end(self, exc: Exception | None) -> None:
        self._alive = False
        self._replies.fail(LeanError(f"closed: {exc}"))

    async def _post(self, path: str, body: str) -> None:
        status, answer = await self.pool.request("POST", f"{path}?id={self.cid}", body.encode())
        if status != 200:
            raise LeanError(f"POST {path} failed with {status}: {answer[:100]!r}")

    async def echo(self, value: str) -> str:
        future = self._replies.expect()
        await self._post("/raw/sse", value)
        return await future

    async def join(self, group: str) -> None:
        await self._post("/raw/sse/join", group)

    def close(self) -> None:
        self._alive = False
        self.stream.close()


# --- python-socketio (the peer): Engine.IO v4, Socket.IO v5 ---------------------------------------

_ack_ids = itertools.count(1)
EIO_PATH = "/socket.io/?EIO=4&transport="


class SocketIOClient(BenchClient):
    """The Socket.IO packets both Engine.IO transports carry: open, ping/pong, connect, events, acks."""

    __slots__ = ("_alive", "_acks", "_connected", "sid")

    def __init__(self, pool: HttpPool, on_burst: OnBurst = _ignore) -> None:
        super().__init__(pool, on_burst)
        self._alive = False
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._connected: asyncio.Future[None] | None = None
        self.sid = ""

    @property
    def alive(self) -> bool:
        return self._alive

    def _write(self, packet: str) -> None:
        raise NotImplementedError

    def _packet(self, packet: str) -> None:
        kind = packet[:1]
        if kind == "2":  # Engine.IO ping: answer pong
            self._write("3")
        elif kind == "4":
            self._message(packet[1:])
        elif kind == "0":
            self.sid = json.loads(packet[1:])["sid"]
        elif kind == "1":
            self._end(LeanError("the server closed the Engine.IO session"))

    def _message(self, packet: str) -> None:
        kind = packet[:1]
        if kind == "2":  # EVENT
            name, *args = json.loads(packet[1:])
            if name == "burst":
                self.on_burst(args[0])
        elif kind == "3":  # ACK
            body = packet[1:]
            split = body.index("[")
            future = self._acks.pop(int(body[:split]), None)
            if future is not None and not future.done():
                future.set_result(json.loads(body[split:]))
        elif kind == "0" and self._connected is not None and not self._connected.done():
            self._connected.set_result(None)
        elif kind in "14":
            self._end(LeanError(f"Socket.IO disconnect or error: {packet[:100]}"))

    def _end(self, exc: Exception | None) -> None:
        self._alive = False
        error = exc or LeanError("closed")
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(error)
        for future in self._acks.values():
            if not future.done():
                future.set_exception(error)
        self._acks.clear()

    async def _emit(self, event: str, value: Any) -> Any:
        ack = next(_ack_ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack] = future
        self._write(f"42{ack}" + json.dumps([event, value], separators=(",", ":")))
        return (await future)[0]

    async def _namespace(self) -> None:
        self._connected = asyncio.get_running_loop().create_future()
        self._write("40")
        await self._connected
        self._connected = None

    async def echo(self, value: str) -> str:
        result: str = await self._emit("echo", value)
        return result

    async def join(self, group: str) -> None:
        await self._emit("join", group)


class SocketIOWsClient(SocketIOClient):
    target = "sio-ws"
    __slots__ = ("ws",)

    async def connect(self) -> None:
        self.ws = await WsProtocol.open(
            self.pool.host, self.pool.port, EIO_PATH + "websocket", self._packet, self._end)
        self._alive = True
        await asyncio.wait_for(self._namespace(), 10)

    def _write(self, packet: str) -> None:
        if self._alive:
            self.ws.send_text(packet)

    def close(self) -> None:
        self._alive = False
        self.ws.close()


class SocketIOPollingClient(SocketIOClient):
    """Polls on its own keep-alive connection (callbacks, no task); sends batched POSTs over the pool."""

    target = "sio-polling"
    __slots__ = ("stream", "_batcher")

    def __init__(self, pool: HttpPool, on_burst: OnBurst = _ignore) -> None:
        super().__init__(pool, on_burst)
        self._batcher = PostBatcher(self._post, separator="\x1e", on_error=self._end)

    async def connect(self) -> None:
        self.stream = await HttpProtocol.open(self.pool.host, self.pool.port)
        status, body = await self.stream.request("GET", EIO_PATH + "polling")
        if status != 200:
            raise LeanError(f"Engine.IO open failed with {status}: {body[:100]!r}")
        for packet in body.decode().split("\x1e"):
            self._packet(packet)
        self._alive = True
        Poller(self.stream, self._url, self._on_body, self._end, lambda: self._alive).poll()
        await asyncio.wait_for(self._namespace(), 10)

    def _url(self) -> str:
        return f"{EIO_PATH}polling&sid={self.sid}"

    def _on_body(self, body: bytes) -> None:
        for packet in body.decode().split("\x1e"):
            if packet:
                self._packet(packet)

    def _write(self, packet: str) -> None:
        if self._alive:
            self._batcher.send(packet)

    async def _post(self, body: bytes) -> None:
        status, answer = await self.pool.request("POST", self._url(), body, POST_HEADERS)
        if status != 200:
            raise LeanError(f"POST failed with {status}: {answer[:100]!r}")

    def close(self) -> None:
        self._alive = False
        self._batcher.retire()
        self.stream.close()


CLIENTS: dict[str, type[BenchClient]] = {
    c.target: c for c in (
        _gateway("WebSockets", "gateway-ws"), _gateway("ServerSentEvents", "gateway-sse"),
        _gateway("ForeverFrame", "gateway-ff"), _gateway("LongPolling", "gateway-lp"),
        _gateway("WebSockets", "gateway-ws-mp", "messagepack"), _gateway("LongPolling", "gateway-lp-mp", "messagepack"),
        RawWsClient, RawSseClient, SocketIOWsClient, SocketIOPollingClient,
    )
}
"""Every target, by name, in the order tables and plots list them."""

MESSAGEPACK_TARGETS = ("gateway-ws-mp", "gateway-lp-mp")
DEFAULT_TARGETS = tuple(t for t in CLIENTS if t not in MESSAGEPACK_TARGETS)
"""What a run measures unless ``--targets`` names others: the MessagePack targets are asked for by name,
so that a full run stays within its time budget."""
