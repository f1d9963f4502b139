"""The MessagePack hub protocol on the wire, against a real uvicorn: WebSockets and LongPolling carry it,
ServerSentEvents and ForeverFrame refuse it clearly, group sends reach JSON and MessagePack clients alike,
and bad frames close only the connection that sent them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from gateway.client import ClientConnection, HttpClient, HttpError, HubClient, Origin
from gateway.client.transport import transport_target
from gateway.protocol import hubjson

if TYPE_CHECKING:
    from conftest import LiveServer

BINARY = ("WebSockets", "LongPolling")
BLOB = bytes(range(256)) * 4
VALUE = {"blob": BLOB, "at": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), "n": [1, -2, 2.5, None, True], "s": "é"}


async def until(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for a condition")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def started(server: LiveServer, transport: str, **options: Any) -> AsyncIterator[HubClient]:
    client = HubClient(server.url(), transport=transport, **{"protocol": "messagepack", **options})
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(params=BINARY)
def binary_transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


async def test_invoke_echo_with_binary_arguments(server: LiveServer, binary_transport: str) -> None:
    async with started(server, binary_transport) as client:
        assert client.transport == binary_transport
        assert await client.invoke("Echo", VALUE) == VALUE
        assert await client.invoke("Echo", b"") == b""


async def test_echo_push_arrives_as_a_messagepack_invocation(server: LiveServer, binary_transport: str) -> None:
    async with started(server, binary_transport) as client:
        echoes: list[Any] = []
        client.on("echo", echoes.append)
        await client.send("EchoPush", VALUE)
        await until(lambda: echoes)
        assert echoes == [VALUE]


async def test_a_hundred_group_messages_arrive_in_order(server: LiveServer, binary_transport: str) -> None:
    group = secrets.token_hex(4)
    async with started(server, binary_transport) as client:
        bursts: list[int] = []
        client.on("burst", lambda message: bursts.append(message["i"]))
        await client.invoke("Join", group)
        assert await client.invoke("PushGroup", group, 100) == 100
        await until(lambda: len(bursts) >= 100)
        assert bursts == list(range(1, 101))


async def test_stateful_reconnect_resumes_with_no_gap(server: LiveServer, binary_transport: str) -> None:
    group = secrets.token_hex(4)
    client = HubClient(server.url(), transport=binary_transport, protocol="messagepack", stateful_reconnect=True,
                       ack_interval=60)
    bursts: list[int] = []
    client.on("burst", lambda message: bursts.append(message["i"]))
    await client.start()
    connection_id = client.connection_id
    try:
        async with started(server, binary_transport) as pusher:
            await client.invoke("Join", group)
            for round_ in range(4):
                await pusher.invoke("PushGroup", group, 25)
                if round_ in (1, 2):
                    await client._transport.abort()  # cut mid-stream: the client resumes on its own
                    assert await client.invoke("Echo", round_) == round_  # answered once the resume is done
            await until(lambda: len(bursts) >= 100, timeout=10)
            await asyncio.sleep(0.2)  # anything duplicated would arrive now
        assert bursts == list(range(1, 26)) * 4
        assert client.connection_id == connection_id and client.state.value == "connected"
        assert await client.invoke("Echo", b"after") == b"after"
    finally:
        await client.close()


async def test_json_and_messagepack_clients_in_one_group_both_receive(server: LiveServer) -> None:
    group = secrets.token_hex(4)
    received: dict[str, list[Any]] = {"json": [], "messagepack": [], "lp": []}
    clients = [
        HubClient(server.url(), transport="WebSockets", protocol="json"),
        HubClient(server.url(), transport="WebSockets", protocol="messagepack"),
        HubClient(server.url(), transport="LongPolling", protocol="messagepack"),
    ]
    try:
        for client, key in zip(clients, received, strict=True):
            client.on("burst", lambda message, key=key: received[key].append(message["i"]))
            await client.start()
            await client.invoke("Join", group)
        await clients[0].invoke("PushGroup", group, 50)
        await until(lambda: all(len(v) >= 50 for v in received.values()))
        assert all(v == list(range(1, 51)) for v in received.values())
    finally:
        for client in clients:
            await client.close()


# --- text-only transports -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ServerSentEvents", "ForeverFrame"])
async def test_a_text_only_transport_refuses_a_messagepack_handshake(server: LiveServer, transport: str) -> None:
    texts: list[str | bytes] = []
    connection = await ClientConnection.open(server.url(), lambda offered: transport, texts.append, lambda e: None)
    try:
        with pytest.raises(HttpError) as refused:
            await connection.send(hubjson.encode_handshake_request("messagepack"))
        assert refused.value.status == 400
        await until(lambda: texts)
        error = json.loads(str(texts[0]).rstrip(hubjson.RS))["error"]
        assert "needs the Binary transfer format" in error and "WebSockets or LongPolling" in error
    finally:
        await connection.stop()


async def test_a_text_only_stream_is_refused_to_a_messagepack_connection(server: LiveServer) -> None:
    http = HttpClient(Origin.parse(server.url()))
    try:
        negotiated = json.loads((await http.request("POST", "/hubs/echo/negotiate?negotiateVersion=1")).body)
        target = transport_target(Origin.parse(server.url()), negotiated["connectionToken"])
        handshake = hubjson.encode_handshake_request("messagepack").encode()
        assert (await http.request("POST", target, body=handshake)).status == 200
        response = await http.request("GET", target, [("Accept", "text/event-stream")])
        assert response.status == 400
        assert "ServerSentEvents carries the Text transfer format only" in json.loads(response.body)["error"]
    finally:
        await http.aclose()


async def test_the_client_skips_text_only_transports(server: LiveServer) -> None:
    async with started(server, ["ServerSentEvents", "LongPolling"]) as client:
        assert client.transport == "LongPolling"


# --- bad input -------------------------------------------------------------------------------------

BAD = [
    (b"\x03\x93\xc1\xc1", "invalid MessagePack"),  # 0xC1 is never used
    (b"\x02\x92\x01", "invalid MessagePack"),  # the array says two elements, the frame holds one
    (b"\xff\xff\xff\xff\xff\x01", "invalid length prefix"),  # six bytes of prefix
    (b"\x80\x80\x80\x01" + b"\x00" * 8, "exceeds the limit"),  # declares 2 MB, over max_message_size
]


@pytest.mark.parametrize(("frame", "error"), BAD)
async def test_bad_input_closes_that_connection_only(
    server: LiveServer, binary_transport: str, frame: bytes, error: str,
) -> None:
    async with started(server, binary_transport) as bystander, started(server, binary_transport) as client:
        with contextlib.suppress(HttpError):  # LongPolling: the POST is answered 400
            await client.send_raw(frame)
        reason = await asyncio.wait_for(client.wait_closed(), 5)
        assert reason is not None and error in reason
        assert await bystander.invoke("Echo", BLOB) == BLOB
