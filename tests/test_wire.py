"""Wire accounting (``ConnectionInfo.wire``) against an independent count: the bytes a TCP relay between the
client and a real server carries, each direction, on every transport."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from live import Live, serve_gateways
from uvicorn.config import WS_PROTOCOLS

from gateway import ConnectionInfo, Gateway
from gateway.client import HubClient
from gateway.demo.hubs import EchoHub
from gateway.server.wire import Wire, request_head, response_head, ws_frame

TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
REQUEST_LINE = re.compile(rb"(?:GET|POST|DELETE) /\S* HTTP/1\.1\r\n")


class CountingRelay:
    """A TCP relay that counts the bytes it carries each way and keeps what the client sent."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.up = 0  # client to server
        self.down = 0
        self.sent: list[bytearray] = []  # per TCP connection, what the client sent
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    @property
    def requests(self) -> int:
        """HTTP requests the client sent (the WebSocket upgrade included), by their request lines."""
        return sum(len(REQUEST_LINE.findall(bytes(sent))) for sent in self.sent)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        sent = bytearray()
        self.sent.append(sent)
        await asyncio.gather(self._pump(reader, up_writer, True, sent), self._pump(up_reader, writer, False, None))

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool, keep: bytearray | None,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
                if keep is not None:
                    keep += data
                writer.write(data)
                await writer.drain()
        except (OSError, RuntimeError):
            pass
        finally:
            writer.close()


# uvicorn's sans-I/O websockets implementation came after 0.29 (the lowest allowed): there, its legacy one
WEBSOCKETS = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"


@pytest.fixture(scope="module", params=[("h11", "wsproto"), ("httptools", WEBSOCKETS)], ids="-".join)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    """uvicorn's two HTTP implementations, each with a WebSocket one: each writes its own heads."""
    http, ws = request.param
    with serve_gateways({"/hub": Gateway(EchoHub, name="hub")}, http=http, ws=ws) as server:
        yield server


async def info(live: Live, connection_id: str | None) -> ConnectionInfo:
    assert connection_id is not None
    found = await asyncio.to_thread(live.call, lambda: live.gateways["/hub"].connections.get(connection_id))
    assert isinstance(found, ConnectionInfo)
    return found


def close_to(counted: int, seen: int) -> bool:
    print(f"counted {counted}, the relay saw {seen}: {100 * (counted - seen) / seen:+.2f}%")
    return abs(counted - seen) <= 0.02 * seen


@pytest.mark.parametrize(("transport", "protocol"), [
    *((t, "json") for t in TRANSPORTS), ("WebSockets", "messagepack"), ("LongPolling", "messagepack"),
])
async def test_wire_bytes_match_what_a_tcp_relay_carries(live: Live, transport: str, protocol: str) -> None:
    relay = CountingRelay(live.port)
    await relay.start()
    client = HubClient(f"http://127.0.0.1:{relay.port}/hub", transport=transport, protocol=protocol)
    pushed: asyncio.Queue[object] = asyncio.Queue()
    client.on("echo", pushed.put_nowait)
    await client.start()
    try:
        for i in range(20):
            assert await client.invoke("Echo", f"{i}:" + "é" * 150) == f"{i}:" + "é" * 150
            await client.invoke("EchoPush", "x" * (40 + i))
            await asyncio.wait_for(pushed.get(), 5)
        await asyncio.sleep(0.3)  # what is in flight lands on both sides
        wire = (await info(live, client.connection_id)).wire
        up, down, requests = relay.up, relay.down, relay.requests
    finally:
        await client.close()
        await relay.stop()
    assert close_to(wire.bytes_in, up), (wire, up)
    assert close_to(wire.bytes_out, down), (wire, down)
    assert wire.requests == requests
    assert (wire.messages_in, wire.messages_out) == (40, 60)  # 40 invocations; 40 completions and 20 pushes


def test_head_and_frame_sizes_are_those_written() -> None:
    scope = {"type": "http", "method": "POST", "raw_path": b"/hub", "query_string": b"id=abc",
             "http_version": "1.1", "headers": [(b"host", b"x"), (b"content-length", b"5")]}
    assert request_head(scope) == len(b"POST /hub?id=abc HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n")
    date_server = len(b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\nserver: uvicorn\r\n")
    expected = len(b"HTTP/1.1 200 OK\r\ncontent-type: a\r\ntransfer-encoding: chunked\r\n\r\n") + date_server
    assert response_head(200, [(b"content-type", b"a")], True) == expected
    assert [ws_frame(n, False) for n in (0, 125, 126, 65535, 65536)] == [2, 127, 130, 65539, 65546]
    assert ws_frame(10, True) == 16
    wire = Wire(bytes_in=1, messages_out=7)
    counts = wire.counts()
    wire.bytes_in += 1
    assert (counts.bytes_in, counts.messages_out) == (1, 7)
