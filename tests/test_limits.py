"""Limits against a real server: message size, POST body, outbox (slow consumers), connections, groups, timeouts.

Each limit is set small on its own mounted gateway, so one server serves the whole module.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import HANDSHAKE, RS, Live, RawWebSocket, negotiate, parse_records, post, request, serve_gateways, wait_until

from gateway import Gateway, Settings
from gateway.client import HubClient, HubError
from gateway.demo.hubs import EchoHub
from gateway.protocol import hubjson
from gateway.protocol.messages import Invocation

MAX_BODY = 4096
SMALL = Settings(
    max_message_size=1024, max_buffer=64 * 1024, keepalive_interval=0.3, client_timeout=1.0,
    handshake_timeout=0.5, disconnect_timeout=0.5, poll_timeout=0.3, max_body=MAX_BODY,
)
SLOW = Settings(max_buffer=128 * 1024, send_timeout=1.0, poll_timeout=5.0)
SLACK = 0.05  # the client starts its watch a little after the server starts its deadline


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateways = {
        "/small": Gateway(EchoHub, name="small", settings=SMALL),
        "/slow": Gateway(EchoHub, name="slow", settings=SLOW),
        "/capped": Gateway(EchoHub, name="capped", settings=Settings(max_connections=3)),
        "/groups": Gateway(EchoHub, name="groups", settings=Settings(max_groups_per_connection=2)),
    }
    with serve_gateways(gateways) as server:
        yield server


def echo_record(size: int, invocation_id: str = "1", char: str = "x") -> str:
    """An Echo invocation whose record (without its separator) is exactly ``size`` UTF-8 bytes."""
    base = len(hubjson.encode(Invocation("Echo", [""], invocation_id)).encode()) - 1
    width = len(char.encode())
    assert (size - base) % width == 0, "pick a size the character divides"
    record = hubjson.encode(Invocation("Echo", [char * ((size - base) // width)], invocation_id))
    assert len(record.encode()) - 1 == size
    return record


def long_polling(port: int, path: str) -> str:
    """A LongPolling connection, handshaken, with its handshake response read; returns the token."""
    token: str = negotiate(port, path)["connectionToken"]
    assert request(port, "GET", f"{path}?id={token}").status == 200
    assert post(port, path, token, HANDSHAKE).status == 200
    assert request(port, "GET", f"{path}?id={token}").body == b"{}" + RS.encode()
    return token


def websocket(port: int, path: str, **kwargs: object) -> RawWebSocket:
    token = negotiate(port, path)["connectionToken"]
    ws = RawWebSocket(port, f"{path}?id={token}", **kwargs)  # type: ignore[arg-type]
    ws.send_text(HANDSHAKE)
    assert ws.records(lambda r: bool(r)) == ["{}"]
    return ws


# --- defaults -----------------------------------------------------------------------------------

DEFAULTS = {
    "max_message_size": 32 * 1024, "max_buffer": 1024 * 1024, "keepalive_interval": 15.0, "client_timeout": 30.0,
    "handshake_timeout": 15.0, "disconnect_timeout": 45.0, "send_timeout": 30.0, "poll_timeout": 20.0,
    "max_body": 1024 * 1024, "max_connections": 100_000, "max_groups_per_connection": 100,
}


def test_the_defaults_are_the_documented_ones() -> None:
    settings = Settings()
    assert {name: getattr(settings, name) for name in DEFAULTS} == DEFAULTS
    security = (Path(__file__).resolve().parents[1] / "SECURITY.md").read_text()
    for name in DEFAULTS:
        assert f"`{name}`" in security, f"SECURITY.md does not document {name}"


def test_held_requests_and_keepalives_stay_under_common_proxy_idle_timeouts() -> None:
    settings = Settings()
    assert settings.keepalive_interval < 60
    assert settings.poll_timeout < 60
    assert settings.client_timeout >= 2 * settings.keepalive_interval  # a client pinging every keep-alive is never cut


# --- message size -------------------------------------------------------------------------------


def test_a_websocket_record_at_the_size_limit_is_served(live: Live) -> None:
    ws = websocket(live.port, "/small")
    ws.send_text(echo_record(1024))
    [completion] = ws.records(lambda r: bool(r))
    assert '"invocationId":"1"' in completion and '"result"' in completion
    ws.close()


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (echo_record(1025, char="x"), 1025),
        (echo_record(1026, char="é"), 1026),  # fewer than 1024 characters: the limit counts bytes
        ('{"type":1,"target":"Echo","arguments":["' + "x" * 1100, 1140),  # no separator yet: a partial record
    ],
    ids=["ascii", "two-byte characters", "partial record"],
)
def test_a_websocket_record_over_the_size_limit_closes_with_the_reason(live: Live, text: str, size: int) -> None:
    ws = websocket(live.port, "/small")
    ws.send_text(text)
    records = ws.records(lambda r: False, timeout=3)
    assert records, "the server did not say why it closed"
    close = parse_records(records[-1] + RS)[0]
    assert close["type"] == 7
    assert close["error"] == f"message of {size} bytes exceeds the limit of 1024 bytes"
    assert ws.closed is not None and ws.closed.code == 1009  # a close frame carrying the wire hint
    assert wait_until(lambda: len(live.gateways["/small"].registry) == 0)


def test_a_posted_record_over_the_size_limit_is_413_and_closes_the_connection(live: Live) -> None:
    token = long_polling(live.port, "/small")
    assert post(live.port, "/small", token, echo_record(1024)).status == 200
    reply = post(live.port, "/small", token, echo_record(1025, "2"))
    assert reply.status == 413
    assert reply.error == "message of 1025 bytes exceeds the limit of 1024 bytes"
    assert post(live.port, "/small", token, hubjson.PING).status == 404


# --- POST body ----------------------------------------------------------------------------------


def test_a_post_body_at_max_body_is_accepted(live: Live) -> None:
    token = long_polling(live.port, "/small")
    body = hubjson.PING * (MAX_BODY // len(hubjson.PING))
    assert len(body) <= MAX_BODY
    assert post(live.port, "/small", token, body).status == 200


def test_a_post_body_over_max_body_is_413_and_closes_the_connection(live: Live) -> None:
    token = long_polling(live.port, "/small")
    body = hubjson.PING * (MAX_BODY // len(hubjson.PING) + 1)
    assert len(body) > MAX_BODY
    reply = post(live.port, "/small", token, body)
    assert reply.status == 413
    assert reply.error == f"request body exceeds {MAX_BODY} bytes"
    assert post(live.port, "/small", token, hubjson.PING).status == 404


# --- outbox: slow consumers ---------------------------------------------------------------------

PUSH = "y" * 16_000


def _stalled_stream(live: Live, transport: str) -> tuple[str, socket.socket | None]:
    """A handshaken connection on /slow whose client stops reading (LongPolling: stops polling)."""
    port = live.port
    token: str = negotiate(port, "/slow")["connectionToken"]
    if transport == "WebSockets":
        ws = RawWebSocket(port, f"/slow?id={token}", rcvbuf=4096)
        ws.send_text(HANDSHAKE)
        assert ws.records(lambda r: bool(r)) == ["{}"]
        return token, ws.sock
    if transport == "LongPolling":
        assert request(port, "GET", f"/slow?id={token}").status == 200
        assert post(port, "/slow", token, HANDSHAKE).status == 200
        return token, None
    query = {"ServerSentEvents": "", "ForeverFrame": f"&transport=ForeverFrame&origin={live.origin}&frame=f"}[transport]
    accept = "text/event-stream" if transport == "ServerSentEvents" else "text/html"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /slow?id={token}{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\n\r\n".encode())
    assert sock.recv(64).startswith(b"HTTP/1.1 200")
    assert post(port, "/slow", token, HANDSHAKE).status == 200
    return token, sock


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"])
def test_a_consumer_that_stops_reading_is_closed_and_its_socket_let_go(
    live: Live, transport: str, caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = live.gateways["/slow"]
    token, sock = _stalled_stream(live, transport)
    conn = gateway.registry.by_token[token]
    pushed = 0
    with caplog.at_level(logging.WARNING, logger="gateway"):
        while token in gateway.registry.by_token and pushed < 2000:
            live.call(lambda: conn.push(hubjson.encode_invocation("big", [PUSH])))
            pushed += 1
    assert token not in gateway.registry.by_token, "the server kept buffering for a consumer that reads nothing"
    assert conn.core.close_reason is not None and conn.core.close_reason.startswith("slow consumer")
    assert any("slow consumer" in r.getMessage() and conn.id in r.getMessage() for r in caplog.records)
    # The outbox never held more than its limit: the rest sat in socket buffers, which are bounded too.
    assert conn.core._queued_bytes + conn.core._unacked_bytes <= SLOW.max_buffer + len(PUSH) + 64
    # A write blocked for send_timeout gives the stream up: no handler (and its outbox) waits forever on a dead reader.
    assert wait_until(lambda: live.in_flight[token] == 0, timeout=SLOW.send_timeout + 3), "the stalled stream is held"
    if sock is not None:
        sock.close()


@pytest.mark.parametrize("transport", ["WebSockets", "LongPolling"])
async def test_a_stateful_client_that_never_acks_is_closed_as_a_slow_consumer(live: Live, transport: str) -> None:
    client = HubClient(live.url("/slow"), transport=transport, stateful_reconnect=True, ack_interval=3600)
    received: list[int] = []
    client.on("big", lambda payload: received.append(len(payload)))
    await client.start()
    conn = live.gateways["/slow"].registry.by_id[client.connection_id or ""]
    for _ in range(SLOW.max_buffer // len(PUSH) + 2):
        live.call(lambda: conn.push(hubjson.encode_invocation("big", [PUSH])))
    error = await client.wait_closed()
    assert error == "slow consumer: too many unacknowledged messages"
    assert len(received) <= SLOW.max_buffer // len(PUSH) + 1
    await client.close()


# --- connections and groups ---------------------------------------------------------------------


def test_negotiate_over_max_connections_is_503_with_retry_after(live: Live) -> None:
    tokens = [negotiate(live.port, "/capped")["connectionToken"] for _ in range(3)]
    sockets = [RawWebSocket(live.port, f"/capped?id={token}") for token in tokens]  # live, no longer pending
    refused = request(live.port, "POST", "/capped/negotiate?negotiateVersion=1")
    assert refused.status == 503
    assert refused.error == "too many connections"
    assert int(refused.headers["retry-after"]) >= 1
    assert request(live.port, "DELETE", f"/capped?id={tokens.pop()}").status == 202
    tokens.append(negotiate(live.port, "/capped")["connectionToken"])  # a freed slot is usable at once
    for token in tokens:
        request(live.port, "DELETE", f"/capped?id={token}")
    for ws in sockets:
        ws.close()


async def test_joining_more_groups_than_allowed_is_a_clear_hub_error(live: Live) -> None:
    client = HubClient(live.url("/groups"), transport="WebSockets")
    await client.start()
    await client.invoke("Join", "a")
    await client.invoke("Join", "b")
    with pytest.raises(HubError, match="a connection may join at most 2 groups"):
        await client.invoke("Join", "c")
    await client.invoke("Join", "a")  # a group it is in already does not count twice
    await client.invoke("Leave", "a")
    await client.invoke("Join", "c")
    assert await client.invoke("Echo", "still usable") == "still usable"
    registry = live.gateways["/groups"].registry
    assert registry.by_id[client.connection_id or ""].groups == {"b", "c"}
    await client.close()
    assert wait_until(lambda: not registry.groups)


# --- timeouts -----------------------------------------------------------------------------------


def test_a_connection_that_never_handshakes_dies_after_the_handshake_timeout(live: Live) -> None:
    token = negotiate(live.port, "/small")["connectionToken"]
    ws = RawWebSocket(live.port, f"/small?id={token}")
    start = time.monotonic()
    assert ws.records(lambda r: False, timeout=SMALL.handshake_timeout + 3) == []
    assert ws.closed is not None or ws.recv_text() is None
    assert SMALL.handshake_timeout - SLACK <= time.monotonic() - start < SMALL.handshake_timeout + 2
    assert post(live.port, "/small", token, HANDSHAKE).status == 404


def test_a_connection_with_no_stream_dies_after_the_disconnect_timeout(live: Live) -> None:
    token = long_polling(live.port, "/small")
    time.sleep(SMALL.disconnect_timeout / 3)
    assert post(live.port, "/small", token, hubjson.PING).status == 200  # not yet
    assert wait_until(lambda: token not in live.gateways["/small"].registry.by_token, SMALL.disconnect_timeout + 2)
    assert post(live.port, "/small", token, hubjson.PING).status == 404


def test_a_held_poll_ends_empty_after_the_poll_timeout(live: Live) -> None:
    token = long_polling(live.port, "/small")
    assert post(live.port, "/small", token, hubjson.PING).status == 200  # heard from now: its 1 s client
    start = time.monotonic()  # timeout is not what ends the 0.3 s poll, however slow the setup was
    reply = request(live.port, "GET", f"/small?id={token}")
    elapsed = time.monotonic() - start
    assert (reply.status, reply.body) == (200, b"")
    assert SMALL.poll_timeout - SLACK <= elapsed < 2.0


def test_a_silent_websocket_gets_pings_then_is_closed_after_the_client_timeout(live: Live) -> None:
    ws = websocket(live.port, "/small")
    start = time.monotonic()
    records = ws.records(lambda r: any('"type":7' in x for x in r), timeout=SMALL.client_timeout + 3)
    elapsed = time.monotonic() - start
    messages = [parse_records(r + RS)[0] for r in records]
    assert messages[-1] == {"type": 7, "error": "client timeout"}
    assert sum(m == {"type": 6} for m in messages) >= 2  # a keep-alive every 0.3 s of silence
    assert SMALL.client_timeout - SLACK <= elapsed < SMALL.client_timeout + 2


def test_a_post_body_trickled_slower_than_the_send_timeout_is_408_and_frees_the_post_slot(live: Live) -> None:
    token = negotiate(live.port, "/slow")["connectionToken"]
    assert post(live.port, "/slow", token, HANDSHAKE).status == 200
    sock = socket.create_connection(("127.0.0.1", live.port))
    sock.sendall(f"POST /slow?id={token} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"type\":".encode())
    sock.settimeout(SLOW.send_timeout + 3)
    reply = ""
    while "took too long" not in reply:  # the head and the body may come in two reads
        chunk = sock.recv(4096).decode()
        if not chunk:
            break
        reply += chunk
    sock.close()
    assert reply.startswith("HTTP/1.1 408") and "took too long" in reply
    assert post(live.port, "/slow", token, hubjson.PING).status == 200  # the next POST is served
    request(live.port, "DELETE", f"/slow?id={token}")
