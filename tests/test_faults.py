"""Faults: clients that vanish mid-stream are freed within the timeouts, on every transport; a proxy that cuts held
requests (a 504 for a held poll, a reset stream, a reset POST) loses nothing under stateful reconnect.

A ``Relay`` (a TCP relay in this process) sits between the Python client and the server and does the cutting.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from live import HANDSHAKE, Live, negotiate, post, request, serve_gateways

from gateway import Gateway, Hub, Settings
from gateway.client import HubClient
from gateway.protocol import hubjson
from gateway.protocol.messages import Invocation

TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
FAST_POLL = 0.4
FAST = Settings(keepalive_interval=0.2, client_timeout=0.6, disconnect_timeout=0.3, handshake_timeout=2.0,
                poll_timeout=FAST_POLL)
STEADY_POLL = 1.0
STEADY = Settings(keepalive_interval=0.5, client_timeout=5.0, disconnect_timeout=5.0, poll_timeout=STEADY_POLL)

# --- the relay ----------------------------------------------------------------------------------

GATEWAY_TIMEOUT = b"HTTP/1.1 504 Gateway Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@dataclass(eq=False)
class Pipe:
    """One client connection through the relay and its upstream twin."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    awaiting: bool = False
    """The client sent a GET and the server has not answered yet (a held poll)."""
    method: bytes = b""
    """The method of the request the client sent last on this connection."""
    muted: bool = False
    """Cut silently: nothing more reaches the client, whose socket stays open (see ``Relay.silent_cut``)."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a crashed proxy or a NAT that forgot the connection does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Relay:
    """A TCP relay in front of the server: ``reset`` every connection, answer held polls with ``504``,
    or ``blackhole`` (keep every socket open and forward nothing: the other side seems alive but silent)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.pipes: set[Pipe] = set()
        self.silent = False
        self.lose_post_responses = 0
        """How many responses to POSTs to swallow, resetting their connection instead (the request got through)."""
        self.hold_post_responses: asyncio.Event | None = None
        """While set to an Event not yet set, responses to POSTs wait for it (a slow proxy)."""
        self.cuts = 0
        self.muted: set[Pipe] = set()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        pipe = Pipe(writer, up_writer)
        self.pipes.add(pipe)
        pipe.tasks = [asyncio.ensure_future(self._copy(pipe, reader, up_writer, True)),
                      asyncio.ensure_future(self._copy(pipe, up_reader, writer, False))]

    async def _copy(self, pipe: Pipe, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        try:
            while data := await reader.read(65536):
                if pipe.muted:
                    continue
                while self.silent:
                    await asyncio.sleep(0.05)
                if up and data[:8].split(b" ", 1)[0] in (b"GET", b"POST", b"DELETE"):
                    pipe.method = data.split(b" ", 1)[0]
                    pipe.awaiting = pipe.method == b"GET"
                elif not up:
                    pipe.awaiting = False
                    if pipe.method == b"POST" and self.hold_post_responses is not None:
                        await self.hold_post_responses.wait()
                    if pipe.method == b"POST" and self.lose_post_responses:
                        self.lose_post_responses -= 1
                        self._cut(pipe)
                        return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.pipes.discard(pipe)
            if not (pipe.muted and writer is pipe.client):
                writer.transport.abort()

    def _cut(self, pipe: Pipe) -> None:
        self.pipes.discard(pipe)
        _reset(pipe.client)
        _reset(pipe.server)
        self.cuts += 1

    def reset(self, *, streams_only: bool = False) -> int:
        """Reset every connection through the relay (or only those not carrying POSTs); returns how many."""
        pipes = [p for p in self.pipes if not (streams_only and p.method in (b"POST", b"DELETE"))]
        for pipe in pipes:
            self._cut(pipe)
        return len(pipes)

    def silent_cut(self) -> int:
        """Cut every stream (a GET or a WebSocket) as a proxy's idle timeout may: the server's side is closed, and
        the client's stays open and gets nothing more, not even an end. Returns how many were cut."""
        streams = [p for p in self.pipes if p.method == b"GET"]
        for pipe in streams:
            pipe.muted = True
            self.pipes.discard(pipe)
            self.muted.add(pipe)
            pipe.server.close()
        self.cuts += len(streams)
        return len(streams)

    def gateway_timeout(self) -> int:
        """Answer every held GET with a 504 and drop its upstream, as a proxy's read timeout does."""
        held = [p for p in self.pipes if p.awaiting]
        for pipe in held:
            self.pipes.discard(pipe)
            pipe.client.write(GATEWAY_TIMEOUT)
            pipe.client.transport.close()
            _reset(pipe.server)
        self.cuts += len(held)
        return len(held)

    async def stop(self) -> None:
        self.silent = False
        if self._server is not None:
            self._server.close()
        self.reset()
        for pipe in self.muted:
            _reset(pipe.client)
        self.muted.clear()
        await asyncio.sleep(0)


# --- hub and server -----------------------------------------------------------------------------

BACKGROUND: set[asyncio.Task[None]] = set()
RECORDED: dict[str, list[int]] = {}
"""What ``Record`` got, by connection id (kept after the connection closes)."""


class FaultHub(Hub):
    """``CountTo(n)`` pushes ``n(1..n)`` to the caller from a background task; ``Record(i)`` keeps what it got."""

    async def count_to(self, n: int, every_ms: float) -> None:
        target = self.clients.caller

        async def count() -> None:
            for i in range(1, int(n) + 1):
                await target.send("n", i)
                await asyncio.sleep(float(every_ms) / 1000)

        task = asyncio.ensure_future(count())
        BACKGROUND.add(task)
        task.add_done_callback(BACKGROUND.discard)

    async def record(self, i: int) -> None:
        RECORDED.setdefault(self.context.connection_id, []).append(i)

    async def recorded(self) -> list[int]:
        return RECORDED.get(self.context.connection_id, [])

    async def join(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, group)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateways = {
        "/fast": Gateway(FaultHub, name="fast", settings=FAST),
        "/steady": Gateway(FaultHub, name="steady", settings=STEADY),
    }
    with serve_gateways(gateways) as server:
        yield server


@pytest.fixture
async def relay(live: Live) -> AsyncIterator[Relay]:
    relay = Relay(live.port)
    await relay.start()
    yield relay
    await relay.stop()


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


# --- clients that vanish ------------------------------------------------------------------------

# The longest the server may take to notice and free a vanished client: a silent one is found out by the client
# timeout (streams) or the poll timeout (long polls), then the disconnect timeout runs; the ticker adds a tick each.
FREED_WITHIN = FAST.client_timeout + FAST_POLL + FAST.disconnect_timeout + 1.0


# A silent drop looks the same to the server with or without stateful reconnect: it is tested once.
VANISHING = [(t, how, stateful) for t in TRANSPORTS for how, stateful in
             [("reset", True), ("reset", False), ("silent", True)]]


@pytest.mark.parametrize(("transport", "how", "stateful"), VANISHING,
                         ids=[f"{t}-{how}-{'stateful' if s else 'plain'}" for t, how, s in VANISHING])
async def test_a_client_that_vanishes_mid_stream_is_freed_within_the_timeouts(
    live: Live, relay: Relay, transport: str, how: str, stateful: bool,
) -> None:
    gateway = live.gateways["/fast"]
    client = HubClient(relay.url("/fast"), transport=transport, stateful_reconnect=stateful,
                       keepalive_interval=0.1, resume_timeout=1.0)
    await client.start()
    connection_id = client.connection_id or ""
    await client.invoke("Join", "watchers")
    assert connection_id in gateway.registry.by_id and gateway.registry.groups["watchers"] == {connection_id}
    token = gateway.registry.by_id[connection_id].token

    if how == "reset":
        await relay.stop()  # every socket reset, and no way back in: the client is gone for good
    else:
        relay.silent = True  # every socket stays open and nothing moves: a half-open connection

    freed = await until(lambda: connection_id not in gateway.registry.by_id, FREED_WITHIN)
    assert freed, f"the server still holds the connection after {FREED_WITHIN:.1f} s"
    assert not gateway.registry.groups and not gateway.registry.by_token
    assert await until(lambda: live.in_flight[token] == 0, 2.0), "a request handler of the vanished client still runs"
    await relay.stop()
    await client.close()


# --- a proxy that cuts held requests ------------------------------------------------------------

N = 300


@dataclass
class Traffic:
    received: list[int] = field(default_factory=list)
    sent: int = 0


async def _faults(relay: Relay, transport: str, rounds: int) -> None:
    """Cut the client's streams while traffic flows: 504s for held polls, resets for every stream.

    POST connections are left alone here: the Python client retries a POST whose response was lost, which
    duplicates it (see the xfail test below); resetting them would make this test fail at random for that.
    """
    cuts, cut = 0, True
    for i in range(rounds * 20):  # a round that finds nothing to cut (no poll held just then) is tried again soon
        await asyncio.sleep(0.15 if cut else 0.02)
        if transport == "LongPolling" and i % 2 == 0:
            cut = relay.gateway_timeout() > 0
        else:
            cut = relay.reset(streams_only=True) > 0
        cuts += cut
        if cuts >= rounds:
            return


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_proxy_cutting_held_requests_loses_nothing_under_stateful_reconnect(
    live: Live, relay: Relay, transport: str,
) -> None:
    # The client never acks (so every resume replays everything from 1, and dedup does all the work) and sends one
    # message at a time: with two POSTs in flight it may send one twice itself (see the xfail tests below).
    client = HubClient(relay.url("/steady"), transport=transport, stateful_reconnect=True, ack_interval=3600,
                       resume_timeout=5.0)
    traffic = Traffic()
    client.on("n", traffic.received.append)
    await client.start()
    await client.invoke("CountTo", N, 5)  # the server pushes 1..N, one every 5 ms, whatever happens to the streams

    async def send_numbers() -> None:  # and the client sends 1..N the other way
        for i in range(1, N + 1):
            await client.invoke("Record", i)
            traffic.sent = i

    sender = asyncio.ensure_future(send_numbers())
    await _faults(relay, transport, rounds=8)
    await sender
    assert await until(lambda: len(traffic.received) >= N, 10.0), f"got {len(traffic.received)} of {N}"
    await asyncio.sleep(0.2)  # anything duplicated would arrive now
    assert relay.cuts >= 8
    assert traffic.received == list(range(1, N + 1))  # nothing lost, nothing twice, in order
    assert await client.invoke("Recorded") == list(range(1, N + 1))
    gateway = live.gateways["/steady"]
    assert list(gateway.registry.by_id) == [client.connection_id]  # one connection all along
    streams = gateway.registry.by_id[client.connection_id or ""].core.generation
    assert streams >= 5, f"only {streams} streams: the faults did not make the client resume"
    await client.close()
    assert await until(lambda: len(gateway.registry) == 0, 2.0)


@pytest.mark.parametrize("transport", ["ServerSentEvents", "LongPolling"])
async def test_a_post_whose_response_is_lost_is_not_delivered_twice(live: Live, relay: Relay, transport: str) -> None:
    client = HubClient(relay.url("/steady"), transport=transport, stateful_reconnect=True, ack_interval=0.05)
    await client.start()  # the handshake POST leaves an idle keep-alive connection for the next one
    relay.lose_post_responses = 1
    await client.send("Record", 1)  # reaches the hub; its 200 is lost on the way back
    await asyncio.sleep(0.3)
    assert relay.cuts == 1
    await client.close()
    assert RECORDED[client.connection_id or ""] == [1]
    assert client.close_error is None


@pytest.mark.parametrize("transport", ["ServerSentEvents", "LongPolling"])
async def test_a_send_queued_behind_a_slow_post_is_not_delivered_again_after_a_resume(
    live: Live, relay: Relay, transport: str,
) -> None:
    client = HubClient(relay.url("/steady"), transport=transport, stateful_reconnect=True, ack_interval=3600)
    await client.start()
    release = asyncio.Event()
    relay.hold_post_responses = release
    first = asyncio.ensure_future(client.send("Record", 1))  # reaches the hub; its 200 waits in the proxy
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(client.send("Record", 2))  # queued behind the first POST
    await asyncio.sleep(0.05)
    assert relay.reset(streams_only=True) == 1  # the stream drops: the client resumes and replays 1 and 2
    await asyncio.sleep(0.3)
    release.set()
    relay.hold_post_responses = None
    await asyncio.gather(first, second, return_exceptions=True)
    await asyncio.sleep(0.2)
    await client.close()
    assert RECORDED[client.connection_id or ""] == [1, 2]
    assert client.close_error is None


def test_a_post_cut_mid_body_is_dropped_and_the_connection_carries_on(live: Live) -> None:
    token = negotiate(live.port, "/steady", query="negotiateVersion=1&useStatefulReconnect=true")["connectionToken"]
    assert request(live.port, "GET", f"/steady?id={token}").status == 200
    assert post(live.port, "/steady", token, HANDSHAKE).status == 200
    record = hubjson.encode(Invocation("Record", [1])).encode()
    sock = socket.create_connection(("127.0.0.1", live.port))
    head = f"POST /steady?id={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(record)}\r\n\r\n"
    sock.sendall(head.encode() + record[:20])  # half a record, then the proxy resets the connection
    time.sleep(0.1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    time.sleep(0.1)
    reply = post(live.port, "/steady", token, hubjson.PING)  # the client's next POST (a resume would replay)
    assert (reply.status, reply.error) == (200, None)


def test_the_relay_reset_is_a_real_reset() -> None:
    """The fault is what it claims: the peer of a reset socket gets ECONNRESET, not an orderly end of stream."""

    async def run() -> Any:
        relay = Relay(0)
        received: list[Any] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            _reset(writer)

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.05)
        try:
            received.append(await reader.read(10))
        except ConnectionResetError as exc:
            received.append(exc)
        writer.close()
        server.close()
        del relay
        return received[0]

    assert isinstance(asyncio.run(run()), ConnectionResetError)
