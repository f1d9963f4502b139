"""The transport contract, against a real uvicorn server, once per transport.

Every test that takes ``transport`` runs on WebSockets, ServerSentEvents, ForeverFrame and
LongPolling; every test that takes ``wire`` runs once per hub protocol and transport pair that
negotiate allows (JSON on all four, MessagePack on WebSockets and LongPolling). The client is
``gateway.client``; raw requests use its small h11 helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

from gateway.client import BY_NAME, TRANSPORTS, ClientConnection, HttpClient, HttpError, HubClient, HubError, Origin
from gateway.client.transport import transport_target
from gateway.protocol import hubjson
from gateway.protocol.messages import Invocation

if TYPE_CHECKING:
    from conftest import LiveServer, Wire

TRANSPORT_NAMES = tuple(t.name for t in TRANSPORTS)
LIMIT = 32 * 1024
NASTY = {"text": "é</script><!-- \u2028\u2029 \"q\" \\ \x1e", "n": [1, 2.5, None, True]}


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for a condition")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def started(server: LiveServer, transport: str, hub: str = "echo", **options: Any) -> AsyncIterator[HubClient]:
    client = HubClient(server.url(hub), transport=transport, **options)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def request(server: LiveServer, method: str, target: str, body: bytes = b"") -> tuple[int, Any]:
    http = HttpClient(Origin.parse(server.origin))
    try:
        response = await http.request(method, target, body=body)
    finally:
        await http.aclose()
    text = response.body.decode()
    is_json = (response.header("content-type") or "").startswith("application/json")
    return response.status, json.loads(text) if is_json else text


async def open_raw(server: LiveServer, transport: str, received: list[str]) -> ClientConnection:
    """A negotiated connection with ``transport``'s stream open and no handshake sent."""
    return await ClientConnection.open(
        server.url(), lambda offered: transport, received.append, lambda error: received.append(f"END {error!r}"),
    )


async def assert_closed_with(client: HubClient, transport: str, reason: str) -> None:
    """The server closed ``client``'s connection and its Close message said ``reason``.

    Long polling may miss the Close message: when the server closes between two polls, the
    next poll finds the token gone (404). The POST that caused the close carried the reason.
    """
    error = await asyncio.wait_for(client.wait_closed(), 5)
    assert error is not None
    if transport == "LongPolling" and "404" in error:
        assert error.endswith("LongPolling GET failed with 404: 'no connection with this id'")
    else:
        assert reason in error


async def assert_alive(client: HubClient) -> None:
    """Another connection keeps working whatever happened to its neighbour."""
    assert await client.invoke("Echo", "still here") == "still here"


# --- negotiate ----------------------------------------------------------------------------------


async def test_negotiate_v1(server: LiveServer) -> None:
    status, body = await request(server, "POST", "/hubs/echo/negotiate?negotiateVersion=1")
    assert status == 200
    assert body["negotiateVersion"] == 1
    assert [t["transport"] for t in body["availableTransports"]] == ["WebSockets", "ServerSentEvents", "LongPolling"]
    formats = [t["transferFormats"] for t in body["availableTransports"]]
    assert formats == [["Text", "Binary"], ["Text"], ["Text", "Binary"]]
    assert len(body["connectionToken"]) >= 22 and body["connectionToken"] != body["connectionId"]
    assert "useStatefulReconnect" not in body


async def test_negotiate_v0_and_stateful(server: LiveServer) -> None:
    status, body = await request(server, "POST", "/hubs/echo/negotiate")
    assert status == 200 and "connectionToken" not in body and body["negotiateVersion"] == 0
    status, body = await request(server, "POST", "/hubs/echo/negotiate?negotiateVersion=1&useStatefulReconnect=true")
    assert status == 200 and body["useStatefulReconnect"] is True


async def test_negotiate_lists_forever_frame_on_request(server: LiveServer) -> None:
    status, body = await request(server, "POST", "/hubs/echo/negotiate?negotiateVersion=1&foreverFrame=true")
    assert status == 200 and [t["transport"] for t in body["availableTransports"]] == list(TRANSPORT_NAMES)


@pytest.mark.parametrize(
    ("method", "query", "status", "error"),
    [
        ("POST", "negotiateVersion=x", 400, "negotiateVersion must be a non-negative integer"),
        ("POST", "negotiateVersion=1&useStatefulReconnect=maybe", 400, "useStatefulReconnect must be true or false"),
        ("GET", "negotiateVersion=1", 405, "negotiate takes a POST"),
    ],
)
async def test_negotiate_errors(server: LiveServer, method: str, query: str, status: int, error: str) -> None:
    assert await request(server, method, f"/hubs/echo/negotiate?{query}") == (status, {"error": error})


# --- lifecycle, per transport ---------------------------------------------------------------------


def test_the_wires_are_every_pair_negotiate_allows() -> None:
    from conftest import WIRES

    assert [tuple(w) for w in WIRES] == [
        ("json", "WebSockets"), ("json", "ServerSentEvents"), ("json", "ForeverFrame"), ("json", "LongPolling"),
        ("messagepack", "WebSockets"), ("messagepack", "LongPolling"),
    ]


async def test_start_invoke_push_close(server: LiveServer, wire: Wire) -> None:
    transport = wire.transport
    client = HubClient(server.url(), transport=transport, protocol=wire.protocol)
    echoes: list[Any] = []
    client.on("echo", echoes.append)
    await client.start()
    assert client.transport == transport
    assert client.connection_id
    assert await client.invoke("Echo", NASTY) == NASTY
    await client.send("EchoPush", NASTY)
    await until(lambda: echoes == [NASTY])
    with pytest.raises(HubError, match="Unknown hub method 'Nope'"):
        await client.invoke("Nope")
    token = client._connection.token if client._connection else ""
    await client.close()
    assert client.state.value == "closed" and client.close_error is None
    status, body = await request(server, "POST", f"/hubs/echo?id={token}", hubjson.PING.encode())
    assert (status, body) == (404, {"error": "no connection with this id"})


async def test_group_push_arrives_in_order(server: LiveServer, wire: Wire) -> None:
    group = secrets.token_hex(4)
    transport, protocol = wire.transport, wire.protocol
    async with started(server, transport, protocol=protocol) as client, started(server, transport) as pusher:
        received: list[int] = []
        client.on("burst", lambda message: received.append(message["i"]))
        await client.invoke("Join", group)
        assert await pusher.invoke("PushGroup", group, 100) == 100
        await until(lambda: len(received) >= 100)
        assert received == list(range(1, 101))


async def test_async_handlers_and_sync_handlers(server: LiveServer, transport: str) -> None:
    async with started(server, transport) as client:
        seen: list[str] = []

        async def later(value: str) -> None:
            await asyncio.sleep(0)
            seen.append("async " + value)

        client.on("echo", lambda value: seen.append("sync " + value))
        client.on("echo", later)
        await client.send("EchoPush", "x")
        await until(lambda: len(seen) == 2)
        assert sorted(seen) == ["async x", "sync x"]


async def test_the_server_offers_its_order_by_default(server: LiveServer) -> None:
    client = HubClient(server.url())
    await client.start()
    try:
        assert client.transport == TRANSPORT_NAMES[0]
        assert client.attempts == []
    finally:
        await client.close()


async def test_fallback_skips_a_transport_that_does_not_start(server: LiveServer) -> None:
    client = HubClient(server.origin + "/hubs/echo?x=1", transport=["ForeverFrame", "LongPolling"], start_timeout=2)
    await client.start()  # the extra query rides along; both would start: the first one wins
    try:
        assert client.transport == "ForeverFrame"
    finally:
        await client.close()


async def test_start_fails_clearly_on_an_unknown_hub(server: LiveServer) -> None:
    client = HubClient(server.origin + "/hubs/nope", transport="LongPolling")
    with pytest.raises(ConnectionError, match="404"):
        await client.start()


# --- errors, per transport --------------------------------------------------------------------------


async def test_unknown_token(server: LiveServer, transport: str) -> None:
    origin = Origin.parse(server.url())
    http = HttpClient(origin)
    stream = BY_NAME[transport](origin, http, lambda text: None, lambda error: None)
    try:
        with pytest.raises(HttpError) as info:
            await stream.connect("no-such-token")
    finally:
        await http.aclose()
    assert info.value.status == 404
    assert info.value.error == "no connection with this id"


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_unknown_token_on_post_and_delete(server: LiveServer, method: str) -> None:
    expected = (404, {"error": "no connection with this id"})
    assert await request(server, method, "/hubs/echo?id=nope", b"{}\x1e") == expected


async def test_missing_id(server: LiveServer) -> None:
    assert await request(server, "GET", "/hubs/echo") == (400, {"error": "the id query parameter is required"})


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "ForeverFrame"])
async def test_a_second_stream_on_one_token(server: LiveServer, transport: str) -> None:
    """Long polling is the exception: a new poll supersedes the held one (the next test)."""
    async with started(server, transport) as client, started(server, transport) as bystander:
        assert client._connection is not None
        origin = Origin.parse(server.url())
        http = HttpClient(origin)
        second = BY_NAME[transport](origin, http, lambda text: None, lambda error: None)
        try:
            with pytest.raises(HttpError) as info:
                await second.connect(client._connection.token, resume=True)
        finally:
            await http.aclose()
        assert info.value.status == 409
        assert info.value.error == "another stream is already open for this connection"
        await assert_alive(client)
        await assert_alive(bystander)


async def test_a_new_long_poll_supersedes_the_held_one(server: LiveServer) -> None:
    status, body = await request(server, "POST", "/hubs/echo/negotiate?negotiateVersion=1")
    origin = Origin.parse(server.url())
    target = transport_target(origin, body["connectionToken"])
    assert (await request(server, "GET", target))[0] == 200  # the first poll answers at once
    assert await request(server, "POST", target, hubjson.encode_handshake_request().encode()) == (200, "")
    assert await request(server, "GET", target) == (200, "{}\x1e")
    held = asyncio.ensure_future(request(server, "GET", target))
    await asyncio.sleep(0.2)
    assert not held.done()
    newer = asyncio.ensure_future(request(server, "GET", target))
    assert await asyncio.wait_for(held, 5) == (204, "")
    await asyncio.sleep(0.1)
    invocation = hubjson.encode(Invocation("EchoPush", ["hi"]))
    assert await request(server, "POST", target, invocation.encode()) == (200, "")
    status, text = await asyncio.wait_for(newer, 5)
    assert status == 200 and hubjson.RecordReader().feed(text) == ['{"type":1,"target":"echo","arguments":["hi"]}']
    assert (await request(server, "DELETE", target))[0] == 202


async def test_malformed_handshake(server: LiveServer, transport: str) -> None:
    async with started(server, transport) as bystander:
        received: list[str] = []
        conn = await open_raw(server, transport, received)
        try:
            try:
                await conn.send('{"protocol":"json"}' + hubjson.RS)
                assert transport == "WebSockets"
            except HttpError as exc:
                assert transport != "WebSockets"
                assert exc.status == 400
                assert exc.error == "malformed handshake: missing required property 'version'"
            await until(lambda: any(r.startswith("END") for r in received))
            if transport != "LongPolling":  # a poll may reach the server only after it closed the connection
                assert received[0] == '{"error":"malformed handshake: missing required property \'version\'"}\x1e'
            status, _ = await request(server, "POST", transport_target(conn.origin, conn.token), b"{}\x1e")
            assert status == 404
        finally:
            await conn.stop()
        await assert_alive(bystander)


@pytest.mark.parametrize("handshake", [
    '{"protocol":"xml","version":1}', '{"protocol":"messagepack","version":1}', "not json",
])
async def test_refused_handshake_fails_start_clearly(server: LiveServer, handshake: str) -> None:
    received: list[str] = []
    conn = await open_raw(server, "ServerSentEvents", received)
    try:
        with pytest.raises(HttpError) as info:
            await conn.send(handshake + hubjson.RS)
        assert info.value.status == 400
        error = info.value.error or ""
        expected = ("is not available", "needs the Binary transfer format", "malformed handshake: invalid JSON")
        assert any(text in error for text in expected)
        await until(lambda: bool(received))
        assert received[0].startswith('{"error":')
    finally:
        await conn.stop()


async def test_invalid_json_closes_with_a_clear_error(server: LiveServer, transport: str) -> None:
    async with started(server, transport) as bystander, started(server, transport) as client:
        try:
            await client.send_raw('{"type":1,"target":' + hubjson.RS)
            assert transport == "WebSockets"
        except HttpError as exc:
            assert exc.status == 400 and exc.error is not None and exc.error.startswith("invalid JSON")
        await assert_closed_with(client, transport, "invalid JSON")
        await assert_alive(bystander)


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ('{"type":1,"target":"Echo"}', "missing required property 'arguments'"),
        ('{"type":1,"target":"Echo","arguments":[NaN]}', "invalid JSON: NaN is not a JSON value"),
    ],
)
async def test_bad_records_close_with_a_clear_error(server: LiveServer, record: str, error: str) -> None:
    async with started(server, "WebSockets") as client:
        await client.send_raw(record + hubjson.RS)
        assert await asyncio.wait_for(client.wait_closed(), 5) == error


async def test_oversized_message(server: LiveServer, transport: str) -> None:
    async with started(server, transport) as bystander, started(server, transport) as client:
        fits = "x" * (LIMIT - 100)
        assert await client.invoke("Echo", fits) == fits
        with pytest.raises((ConnectionError, HttpError)) as info:
            await client.invoke("Echo", "x" * (LIMIT + 1))
        assert f"exceeds the limit of {LIMIT} bytes" in str(info.value)
        if isinstance(info.value, HttpError):
            assert info.value.status == 413
        await assert_closed_with(client, transport, f"exceeds the limit of {LIMIT} bytes")
        await assert_alive(bystander)


async def test_a_call_failed_by_its_own_write_leaves_no_unretrieved_exception(
    server: LiveServer, transport: str, caplog: pytest.LogCaptureFixture,
) -> None:
    async with started(server, transport) as client:
        with contextlib.suppress(ConnectionError, HttpError):
            await client.invoke("Echo", "x" * (LIMIT + 1))
        await asyncio.wait_for(client.wait_closed(), 5)
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()  # a future whose exception nobody read says so when it is collected
        await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_a_dropped_stream_without_stateful_reconnect_closes(server: LiveServer, transport: str) -> None:
    async with started(server, transport) as client:
        await client._transport.abort()
        error = await asyncio.wait_for(client.wait_closed(), 5)
        assert error is not None and error.startswith("the stream ended")


@pytest.mark.parametrize("name", ["ServerSentEvents", "ForeverFrame", "LongPolling"])
async def test_streaming_responses_defeat_buffering(server: LiveServer, name: str) -> None:
    status, body = await request(server, "POST", "/hubs/echo/negotiate?negotiateVersion=1")
    origin = Origin.parse(server.url())
    http = HttpClient(origin)
    params = {"transport": name, "origin": server.origin, "frame": "f1"} if name == "ForeverFrame" else {}
    headers = [("Accept", "text/event-stream")] if name == "ServerSentEvents" else []
    stream, head = await http.stream("GET", transport_target(origin, body["connectionToken"], **params), headers)
    stream.abort()
    await http.request("DELETE", transport_target(origin, body["connectionToken"]))
    await http.aclose()
    assert head.status == 200
    assert head.header("cache-control") == "no-cache, no-store, no-transform"
    assert head.header("x-accel-buffering") == "no"
    assert head.header("content-encoding") == "identity"
    if name == "ForeverFrame":
        assert head.header("content-type") == "text/html; charset=utf-8"
        assert head.header("x-content-type-options") == "nosniff"


async def test_foreverframe_refuses_an_origin_it_does_not_allow(server: LiveServer) -> None:
    # the demo allows any origin; a bad frame id is refused whatever the origin
    status, body = await request(server, "POST", "/hubs/echo/negotiate?negotiateVersion=1")
    target = transport_target(Origin.parse(server.url()), body["connectionToken"], transport="ForeverFrame",
                              origin=server.origin, frame="bad id!")
    assert await request(server, "GET", target) == (400, {"error": "frame must match [A-Za-z0-9_-]{1,64}"})


# --- stateful reconnect, per transport ---------------------------------------------------------------


async def test_stateful_reconnect_has_no_gap_and_no_duplicate(server: LiveServer, wire: Wire) -> None:
    group = secrets.token_hex(4)
    transport = wire.transport
    # ack_interval: nothing is acked during the test, so every resume replays everything, twice over
    client = HubClient(server.url(), transport=transport, protocol=wire.protocol, stateful_reconnect=True,
                       ack_interval=60)
    bursts: list[int] = []
    echoes: list[int] = []
    client.on("burst", lambda message: bursts.append(message["i"]))
    client.on("echo", echoes.append)
    await client.start()
    connection_id = client.connection_id
    async with started(server, transport) as pusher:
        try:
            await client.invoke("Join", group)
            for round_ in range(5):
                await pusher.invoke("PushGroup", group, 20)
                for k in range(4):
                    await client.send("EchoPush", round_ * 4 + k)
                    if (round_, k) in ((1, 1), (3, 2)):
                        await client._transport.abort()  # cut mid-stream: the client resumes on its own
                if round_ == 2:
                    await client.resume()  # a resume asked for while the stream is alive
            await until(lambda: len(bursts) >= 100 and len(echoes) >= 20, timeout=10)
            await asyncio.sleep(0.2)  # anything duplicated would arrive now
            assert bursts == list(range(1, 21)) * 5
            assert echoes == list(range(20))
            assert client.connection_id == connection_id
            assert client.state.value == "connected"
            assert client._ledger is not None and client._ledger.duplicates > 0  # the replays did overlap
            assert await client.invoke("Echo", "after") == "after"
        finally:
            await client.close()


async def test_stateful_resume_on_another_transport(server: LiveServer, transport: str) -> None:
    """A resume may use another transport than the one that dropped: here the next one in order."""
    other = TRANSPORT_NAMES[(TRANSPORT_NAMES.index(transport) + 1) % len(TRANSPORT_NAMES)]
    group = secrets.token_hex(4)
    client = HubClient(server.url(), transport=transport, stateful_reconnect=True, ack_interval=60)
    bursts: list[int] = []
    client.on("burst", lambda message: bursts.append(message["i"]))
    await client.start()
    async with started(server, transport) as pusher:
        try:
            await client.invoke("Join", group)
            await pusher.invoke("PushGroup", group, 30)
            await client.resume(other)
            assert client.transport == other
            await pusher.invoke("PushGroup", group, 30)
            await until(lambda: len(bursts) >= 60)
            await asyncio.sleep(0.2)
            assert bursts == list(range(1, 31)) * 2
            assert await client.invoke("Echo", "moved") == "moved"
        finally:
            await client.close()


async def test_a_raw_trackable_record_is_counted_so_the_servers_ack_of_it_is_accepted(
    server: LiveServer, transport: str,
) -> None:
    """The server numbers every trackable message it reads, ``send_raw``'s too; the client must count it the same
    way, or the server's Ack names a message the client's ledger never sent: a protocol error that closes the client
    without telling the server, so that the token outlives ``close``."""
    client = HubClient(server.url(), transport=transport, stateful_reconnect=True, ack_interval=0.05)
    await client.start()
    assert client._connection is not None
    token = client._connection.token
    try:
        await client.send_raw('{"type":1,"target":"NoSuchMethod","arguments":[]}' + hubjson.RS)
        assert await client.invoke("Echo", "after") == "after"  # the server's Ack of the raw record came first
        assert client.state.value == "connected" and client.close_error is None
    finally:
        await client.close()
    status, _ = await request(server, "POST", transport_target(Origin.parse(server.url()), token), b"x")
    assert status == 404  # close ended the connection on the server too
