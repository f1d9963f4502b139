"""Connection tokens: random and long, one live stream each, never logged, never confused with the connection id,
and not worth guessing (404s, then 429 from one client)."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import string
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LiveServer
from live import (
    HANDSHAKE,
    RS,
    Live,
    RawStream,
    RawWebSocket,
    forever_frame,
    negotiate,
    post,
    request,
    serve_gateways,
    sse,
    wait_until,
)

from gateway import Gateway, Settings
from gateway.client import HubClient
from gateway.demo.hubs import EchoHub
from gateway.protocol import hubjson

TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
STREAMING = TRANSPORTS[:3]
POLL_TIMEOUT = 0.5


class ManualClock:
    """The gateway's clock, moved by the test (the bad-token window is 10 s)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CLOCK = ManualClock()


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateways = {
        "/hub": Gateway(EchoHub, name="hub", settings=Settings(poll_timeout=POLL_TIMEOUT)),
        "/guarded": Gateway(EchoHub, name="guarded", clock=CLOCK, settings=Settings(handshake_timeout=1e9)),
    }
    with serve_gateways(gateways) as server:
        yield server


# --- what a token is ----------------------------------------------------------------------------


def _bits(token: str) -> float:
    if set(token) <= set(string.hexdigits):
        return 4.0 * len(token)
    assert set(token) <= set(string.ascii_letters + string.digits + "-_"), f"unexpected token alphabet: {token!r}"
    return 6.0 * len(token)


def test_tokens_are_random_at_least_128_bit_and_not_derived_from_the_connection_id(live: Live) -> None:
    bodies = [negotiate(live.port) for _ in range(300)]
    tokens = [b["connectionToken"] for b in bodies]
    ids = [b["connectionId"] for b in bodies]
    assert len(set(tokens)) == len(tokens) and len(set(ids)) == len(ids)
    assert min(_bits(t) for t in tokens) >= 128
    width = min(map(len, tokens))
    for position in range(width):  # no fixed, counting or time-based part anywhere in the token
        assert len({t[position] for t in tokens}) >= 16, f"position {position} of the token hardly varies"
    for token, connection_id in zip(tokens, ids, strict=True):
        assert not any(connection_id[i:i + 6] in token for i in range(len(connection_id) - 5))
    for token in tokens:
        request(live.port, "DELETE", f"/hub?id={token}")


def test_a_connection_id_is_never_accepted_where_a_token_is_expected(live: Live) -> None:
    body = negotiate(live.port)
    connection_id, token = body["connectionId"], body["connectionToken"]
    assert request(live.port, "GET", f"/hub?id={connection_id}").status == 404
    assert sse(live.port, "/hub", connection_id).status == 404
    assert forever_frame(live.port, "/hub", connection_id, live.origin).status == 404
    assert RawWebSocket(live.port, f"/hub?id={connection_id}").status == 404
    assert post(live.port, "/hub", connection_id, HANDSHAKE).status == 404
    assert request(live.port, "DELETE", f"/hub?id={connection_id}").status == 404
    # None of that touched the connection: its token works as if nothing happened.
    assert request(live.port, "GET", f"/hub?id={token}").status == 200
    assert post(live.port, "/hub", token, HANDSHAKE).status == 200
    assert request(live.port, "GET", f"/hub?id={token}").body == b"{}" + RS.encode()
    assert request(live.port, "DELETE", f"/hub?id={token}").status == 202


def test_negotiate_version_0_uses_the_connection_id_as_its_id(live: Live) -> None:
    body = negotiate(live.port, query="negotiateVersion=0")
    assert "connectionToken" not in body
    assert request(live.port, "GET", f"/hub?id={body['connectionId']}").status == 200


def test_a_token_dies_with_its_connection(live: Live) -> None:
    token = negotiate(live.port)["connectionToken"]
    assert request(live.port, "GET", f"/hub?id={token}").status == 200
    assert post(live.port, "/hub", token, HANDSHAKE).status == 200
    assert request(live.port, "DELETE", f"/hub?id={token}").status == 202
    assert post(live.port, "/hub", token, hubjson.PING).status == 404
    last = request(live.port, "GET", f"/hub?id={token}")  # a poll just after the close may get the Close message
    assert last.status in (200, 204, 404)
    assert request(live.port, "GET", f"/hub?id={token}").status == 404
    assert RawWebSocket(live.port, f"/hub?id={token}").status == 404


def test_a_websocket_on_a_token_just_closed_gets_its_close_message_once_then_404(live: Live) -> None:
    token = negotiate(live.port)["connectionToken"]
    assert request(live.port, "GET", f"/hub?id={token}").status == 200
    assert post(live.port, "/hub", token, HANDSHAKE).status == 200
    assert request(live.port, "DELETE", f"/hub?id={token}").status == 202  # its Close message waits for a stream
    ws = RawWebSocket(live.port, f"/hub?id={token}")
    try:
        assert ws.accepted and ws.recv_text() == '{}' + RS + '{"type":7}' + RS and ws.recv_text() is None
    finally:
        ws.close()
    assert RawWebSocket(live.port, f"/hub?id={token}").status == 404


# --- one live stream per token ------------------------------------------------------------------


def _attach(live: Live, token: str, transport: str) -> tuple[int, Any]:
    if transport == "WebSockets":
        ws = RawWebSocket(live.port, f"/hub?id={token}")
        return (200 if ws.accepted else ws.status), ws
    if transport == "ServerSentEvents":
        stream = sse(live.port, "/hub", token)
    elif transport == "ForeverFrame":
        stream = forever_frame(live.port, "/hub", token, live.origin)
    else:
        stream = RawStream(live.port, f"/hub?id={token}")
    return stream.status, stream


def _handshake(live: Live, token: str, transport: str, stream: Any) -> None:
    if transport == "WebSockets":
        stream.send_text(HANDSHAKE)
        assert stream.records(lambda r: bool(r)) == ["{}"]
    else:
        assert post(live.port, "/hub", token, HANDSHAKE).status == 200
        assert b"{}" in stream.read_until(b"{}")


def _received(transport: str, stream: Any, marker: str) -> bool:
    if transport == "WebSockets":
        return any(marker in r for r in stream.records(lambda r: any(marker in x for x in r)))
    return marker.encode() in stream.read_until(marker.encode())


@pytest.mark.parametrize("second", TRANSPORTS)
@pytest.mark.parametrize("first", STREAMING)
def test_a_second_stream_on_a_token_is_409_and_the_first_keeps_working(live: Live, first: str, second: str) -> None:
    token = negotiate(live.port)["connectionToken"]
    status, stream = _attach(live, token, first)
    assert status == 200
    _handshake(live, token, first, stream)
    status, other = _attach(live, token, second)
    assert status == 409
    assert other.error == "another stream is already open for this connection"
    conn = live.gateways["/hub"].registry.by_token[token]
    live.call(lambda: conn.push(hubjson.encode_invocation("mark", ["still-here"])))
    assert _received(first, stream, "still-here")
    stream.close()


@pytest.mark.parametrize("second", TRANSPORTS)
@pytest.mark.parametrize("first", STREAMING)
def test_under_stateful_reconnect_a_new_stream_replaces_the_old_one(live: Live, first: str, second: str) -> None:
    token = negotiate(live.port, query="negotiateVersion=1&useStatefulReconnect=true")["connectionToken"]
    status, stream = _attach(live, token, first)
    assert status == 200
    _handshake(live, token, first, stream)
    status, replacement = _attach(live, token, second)  # e.g. the client's side of a half-open TCP connection
    assert status == 200
    if first == "WebSockets":
        assert stream.records(lambda r: False, timeout=3) == []  # nothing more, and the socket closes
        assert stream.recv_text() is None, "the replaced WebSocket is still open"
    else:
        assert stream.ended(timeout=3), "the replaced stream is still open"
    stream.close()
    replacement.close()


def test_a_new_poll_supersedes_the_held_one(live: Live) -> None:
    token = negotiate(live.port)["connectionToken"]
    assert request(live.port, "GET", f"/hub?id={token}").status == 200
    assert post(live.port, "/hub", token, HANDSHAKE).status == 200
    assert request(live.port, "GET", f"/hub?id={token}").body == b"{}" + RS.encode()
    held = RawStream(live.port, f"/hub?id={token}")
    gateway = live.gateways["/hub"]
    assert wait_until(lambda: gateway.registry.by_token[token].core.attached)
    newer = RawStream(live.port, f"/hub?id={token}")
    assert held.status == 204
    conn = gateway.registry.by_token[token]
    live.call(lambda: conn.push(hubjson.encode_invocation("mark", ["to-the-newer-poll"])))
    assert newer.status == 200 and b"to-the-newer-poll" in newer.read_until(b"to-the-newer-poll")


# --- never logged -------------------------------------------------------------------------------


def _leaks(records: list[logging.LogRecord], secret: str) -> list[str]:
    out = []
    for record in records:
        text = record.getMessage() + (record.exc_text or "") + repr(record.args)
        if secret in text:
            out.append(f"{record.name}: {record.getMessage()}")
    return out


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_token_is_never_logged_during_a_whole_session(
    server: LiveServer, transport: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = HubClient(server.url("echo"), transport=transport, stateful_reconnect=True, ack_interval=0.05)
    pushed: list[Any] = []
    client.on("echo", pushed.append)
    await client.start()
    assert client._connection is not None
    token = client._connection.token
    assert await client.invoke("Echo", "before") == "before"
    await client._transport.abort()  # a drop: the client resumes on the same token
    await client.invoke("EchoPush", "after")
    await asyncio.wait_for(_until(lambda: pushed == ["after"]), 5)
    await client.send_raw('{"type":1,"target":"NoSuchMethod","arguments":[]}' + RS)  # an error path
    await client.close()
    port = int(server.origin.rsplit(":", 1)[1])
    await asyncio.to_thread(request, port, "POST", f"/hubs/echo?id={token}", body=b"x")  # a dead token
    await asyncio.to_thread(request, port, "GET", f"/hubs/echo?id={token}")
    await asyncio.sleep(0.1)
    connection_id = client.connection_id or ""
    assert any(connection_id in r.getMessage() for r in caplog.records), "no gateway log was captured"
    assert _leaks(caplog.records, token) == []


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def test_uvicorn_at_its_default_log_level_does_not_log_tokens(caplog: pytest.LogCaptureFixture) -> None:
    uvicorn_loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    with serve_gateways({"/hub": Gateway(EchoHub)}, access_log=True, log_level="info") as live:
        for logger in uvicorn_loggers:
            logger.addHandler(caplog.handler)
        try:
            token = negotiate(live.port)["connectionToken"]
            ws = RawWebSocket(live.port, f"/hub?id={token}")
            ws.send_text(HANDSHAKE)
            ws.records(lambda r: bool(r))
            ws.close()
            other = negotiate(live.port)["connectionToken"]
            request(live.port, "GET", f"/hub?id={other}")
            time.sleep(0.1)
        finally:
            for logger in uvicorn_loggers:
                logger.removeHandler(caplog.handler)
    assert _leaks(caplog.records, token) == [] and _leaks(caplog.records, other) == []


# --- guessing -----------------------------------------------------------------------------------


def _guess(live: Live, kind: str, source: str) -> int:
    token = secrets.token_urlsafe(24)
    if kind == "WebSocket":
        return RawWebSocket(live.port, f"/guarded?id={token}", source=source).status
    return request(live.port, kind, f"/guarded?id={token}", body=b"{}" + RS.encode() if kind == "POST" else b"",
                   source=source).status


def test_guessing_tokens_gets_404s_then_429_from_that_client_only(live: Live) -> None:
    gateway = live.gateways["/guarded"]
    limit = gateway.bad_tokens.limit
    valid = negotiate(live.port, "/guarded", source="127.0.0.7")["connectionToken"]
    assert request(live.port, "GET", f"/guarded?id={valid}", source="127.0.0.7").status == 200
    kinds = ["GET", "POST", "DELETE", "WebSocket"]
    statuses = [_guess(live, kinds[i % 4], "127.0.0.7") for i in range(limit)]
    assert statuses == [404] * limit
    blocked = request(live.port, "GET", f"/guarded?id={secrets.token_urlsafe(24)}", source="127.0.0.7")
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= gateway.bad_tokens.window
    assert {_guess(live, kind, "127.0.0.7") for kind in kinds} == {429}
    assert _guess(live, "GET", "127.0.0.8") == 404  # another client is not punished
    # The guesser's own live connection is not locked out.
    assert post(live.port, "/guarded", valid, HANDSHAKE, source="127.0.0.7").status == 200
    CLOCK.now += gateway.bad_tokens.window
    assert _guess(live, "GET", "127.0.0.7") == 404  # the window has passed
    request(live.port, "DELETE", f"/guarded?id={valid}")


def test_a_guess_with_a_body_that_is_not_utf8_is_still_404_then_429(live: Live) -> None:
    CLOCK.now += 3600
    statuses = [request(live.port, "POST", f"/guarded?id={secrets.token_urlsafe(24)}", body=b"\xff\xfe",
                        source="127.0.0.9").status for _ in range(live.gateways["/guarded"].bad_tokens.limit + 1)]
    assert set(statuses[:-1]) == {404} and statuses[-1] == 429


def test_the_bad_token_memory_is_bounded() -> None:
    from gateway.server.limits import BadTokenLimiter

    limiter = BadTokenLimiter(limit=3, window=10.0, max_clients=100)
    for i in range(10_000):
        limiter.miss(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(limiter._hits) <= 100
    assert math.isclose(limiter.blocked("10.0.39.15", 0.0), 0.0)
