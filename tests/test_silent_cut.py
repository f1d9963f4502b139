"""A cut that only the server sees: a proxy ends a stream, the server notices at once, the client notices nothing.

The client finds out later (its server timeout, or a POST answer saying no stream is attached) and resumes. The
detached connection must outlive that, so its groups and every message sent meanwhile survive. The relay of
``test_faults`` makes the cut: it closes the stream's server side and forwards nothing more to the client, whose
socket stays open.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from live import (
    HANDSHAKE,
    Live,
    RawWebSocket,
    forever_frame,
    negotiate,
    parse_records,
    post,
    request,
    serve_gateways,
    sse,
    wait_until,
)
from test_faults import Relay, until

from gateway import Gateway, Hub, Limits, Settings
from gateway.client import HubClient
from gateway.protocol import Connection, hubjson
from gateway.protocol.connection import CLIENT_SERVER_TIMEOUT, RESUME_TIME

STATEFUL = "negotiateVersion=1&useStatefulReconnect=true"
STREAMING = ("WebSockets", "ServerSentEvents", "ForeverFrame")
SCALE = 10.0
"""The scaled server runs the default timings divided by SCALE (a 15 s keep-alive is 1.5 s here), and so do the
clients: the ratios are the defaults' own."""
DEFAULTS = Limits()
TIMINGS = ("keepalive_interval", "client_timeout", "handshake_timeout", "disconnect_timeout", "poll_timeout",
           "closed_linger")
SCALED = Settings(**{name: getattr(Settings(), name) / SCALE for name in TIMINGS})
APP_ORIGIN = "http://app.test"


# --- the invariant, without I/O ----------------------------------------------------------------


def test_the_default_lifetimes_outlive_a_cut_noticed_late() -> None:
    assert DEFAULTS.lifetime_problems() == [] and Settings().limits == DEFAULTS
    assert DEFAULTS.disconnect_timeout >= CLIENT_SERVER_TIMEOUT + RESUME_TIME
    assert DEFAULTS.keepalive_interval < CLIENT_SERVER_TIMEOUT and DEFAULTS.keepalive_interval < 60


def test_lifetimes_that_forget_a_connection_too_soon_are_reported() -> None:
    problems = Limits(disconnect_timeout=15.0).lifetime_problems()
    assert len(problems) == 1 and "disconnect_timeout 15 s" in problems[0]
    slow = Limits(keepalive_interval=60.0, disconnect_timeout=200.0)
    assert "keepalive_interval" in slow.lifetime_problems(server_timeout=90.0)[0]


def test_a_connection_cut_silently_waits_for_the_late_resume_and_replays_everything() -> None:
    """Worst case: the client heard the server just before the cut, notices only at its server timeout, and
    its resume takes the whole resume time. The connection is still there and replays every message."""
    conn = Connection(0.0, stateful=True)
    generation = conn.attach(0.0)
    conn.receive(HANDSHAKE, 0.0)
    conn.take(0.0)  # the handshake answer
    conn.push(hubjson.encode_invocation("n", [1]))
    conn.take(1.0)  # sent down the stream the proxy is about to cut: never seen by the client
    assert conn.detach(generation, 1.0)  # the server sees the cut at once
    conn.push(hubjson.encode_invocation("n", [2]))  # sent to the client's group meanwhile
    back = 1.0 + CLIENT_SERVER_TIMEOUT + RESUME_TIME
    for second in range(2, int(back) + 1):
        assert conn.tick(float(second)) is None, f"closed {second - 1} s after the cut"
    conn.attach(back, resume=True)
    records = parse_records(conn.take(back))
    assert records[0] == {"type": 9, "sequenceId": 1}
    assert [r["arguments"] for r in records[1:]] == [[1], [2]]


# --- a real server and the Python client through a relay --------------------------------------------


class CutHub(Hub):
    async def join(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, group)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateways = {
        "/scaled": Gateway(CutHub, name="scaled", settings=SCALED),
        "/hub": Gateway(CutHub, name="hub", allowed_origins=[APP_ORIGIN]),
    }
    with serve_gateways(gateways) as server:
        yield server


@pytest.fixture
async def relay(live: Live) -> AsyncIterator[Relay]:
    relay = Relay(live.port)
    await relay.start()
    yield relay
    await relay.stop()


def scaled_client(relay: Relay, transport: str, **options: float) -> HubClient:
    timeouts = {"keepalive_interval": DEFAULTS.keepalive_interval / SCALE,
                "server_timeout": CLIENT_SERVER_TIMEOUT / SCALE, **options}
    return HubClient(relay.url("/scaled"), transport=transport, stateful_reconnect=True, ack_interval=0.05,
                     resume_timeout=RESUME_TIME / SCALE, **timeouts)


async def publish(live: Live, gateway: Gateway, numbers: range) -> None:
    for i in numbers:
        await asyncio.to_thread(live.call, lambda i=i: gateway.clients.group("watchers").send("n", i))


async def cut_and_resume(live: Live, relay: Relay, client: HubClient) -> list[int]:
    """Start, join, cut the stream silently while the group gets messages; what the client received."""
    gateway = live.gateways["/scaled"]
    received: list[int] = []
    client.on("n", received.append)
    await client.start()
    connection_id = client.connection_id or ""
    await client.invoke("Join", "watchers")
    conn = gateway.registry.by_id[connection_id]
    await publish(live, gateway, range(1, 4))
    assert await until(lambda: received == [1, 2, 3], 5.0), received
    assert relay.silent_cut() == 1
    assert await until(lambda: not conn.core.attached, 2.0), "the server did not see the cut"
    await publish(live, gateway, range(4, 11))
    resumed = await until(lambda: conn.core.attached or client.close_error is not None, 20.0)
    assert resumed and client.close_error is None, f"no resume: {client.close_error}"
    assert await until(lambda: len(received) >= 10, 5.0), received
    await asyncio.sleep(0.2)  # anything duplicated would arrive now
    assert client.connection_id == connection_id and gateway.registry.by_id.get(connection_id) is conn
    assert gateway.registry.groups.get("watchers") == {connection_id}, "the connection lost its group"
    assert conn.core.generation >= 2
    return received


@pytest.mark.parametrize("transport", STREAMING)
async def test_a_silent_cut_noticed_at_the_server_timeout_resumes_the_same_connection(
    live: Live, relay: Relay, transport: str,
) -> None:
    client = scaled_client(relay, transport)
    try:
        received = await cut_and_resume(live, relay, client)
    finally:
        await client.close()
    assert received == list(range(1, 11))  # nothing lost, nothing twice, in order


@pytest.mark.parametrize("transport", ["ServerSentEvents", "ForeverFrame"])
async def test_a_post_answer_saying_no_stream_makes_the_client_resume(
    live: Live, relay: Relay, transport: str,
) -> None:
    """With a server timeout of an hour, only the answer to a keep-alive POST can tell the client."""
    client = scaled_client(relay, transport, server_timeout=3600.0, keepalive_interval=0.2)
    try:
        received = await cut_and_resume(live, relay, client)
    finally:
        await client.close()
    assert received == list(range(1, 11))


# --- what the server answers ----------------------------------------------------------------------


def _handshaken(live: Live) -> str:
    token: str = negotiate(live.port, "/hub", query=STATEFUL)["connectionToken"]
    assert post(live.port, "/hub", token, HANDSHAKE).status == 200
    return token


def test_a_post_answer_says_when_no_stream_is_attached(live: Live) -> None:
    token: str = negotiate(live.port, "/hub", query=STATEFUL)["connectionToken"]
    stream = sse(live.port, "/hub", token)
    assert stream.status == 200
    answer = post(live.port, "/hub", token, HANDSHAKE, headers={"Origin": APP_ORIGIN})
    assert answer.status == 200 and "x-gateway-stream" not in answer.headers
    assert "x-gateway-stream" in answer.headers["access-control-expose-headers"]  # readable across origins
    stream.close()  # the stream ends: the server detaches the connection
    conn = live.gateways["/hub"].registry.by_token[token]
    assert wait_until(lambda: not conn.core.attached)
    answer = post(live.port, "/hub", token, hubjson.PING)
    assert (answer.status, answer.headers.get("x-gateway-stream")) == (200, "none")


def test_no_stream_yet_is_not_a_cut(live: Live) -> None:
    """A frame still loading when the handshake POST arrives: the answer must not send the client away."""
    token: str = negotiate(live.port, "/hub", query=STATEFUL)["connectionToken"]
    answer = post(live.port, "/hub", token, HANDSHAKE)
    assert answer.status == 200 and "x-gateway-stream" not in answer.headers


def _close_detached(live: Live) -> str:
    """A handshaken connection, closed by the server while no stream is attached (its Close message waits)."""
    token = _handshaken(live)
    conn = live.gateways["/hub"].registry.by_token[token]
    live.call(lambda: conn.close("closed by the test"))
    return token


def _closes(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [r for r in records if r.get("type") == 7]


def test_a_closed_connections_event_stream_carries_the_close_message(live: Live) -> None:
    token = _close_detached(live)
    stream = sse(live.port, "/hub", token)
    assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
    body = stream.read_until(b"0\r\n\r\n")
    stream.close()
    data = "".join(line[6:] for line in body.decode().split("\n") if line.startswith("data: "))
    assert _closes(parse_records(data)) == [{"type": 7, "error": "closed by the test"}]


def test_a_closed_connections_frame_page_carries_the_close_message(live: Live) -> None:
    token = _close_detached(live)
    stream = forever_frame(live.port, "/hub", token, live.origin)
    assert stream.status == 200 and stream.headers["content-type"].startswith("text/html")
    body = stream.read_until(b"0\r\n\r\n")
    stream.close()
    assert b'\\"type\\":7' in body and b"closed by the test" in body


def test_a_closed_connections_websocket_carries_the_close_message_then_closes(live: Live) -> None:
    token = _close_detached(live)
    ws = RawWebSocket(live.port, f"/hub?id={token}")
    try:
        assert ws.accepted, (ws.status, ws.reject_body)
        records = ws.records(lambda out: any(r.startswith('{"type":7') for r in out))
        assert ws.recv_text() is None and ws.closed is not None and ws.closed.code == 1000
    finally:
        ws.close()
    assert _closes([json.loads(r) for r in records]) == [{"type": 7, "error": "closed by the test"}]


def test_a_closed_connections_poll_carries_the_close_message(live: Live) -> None:
    token = _close_detached(live)
    reply = request(live.port, "GET", f"/hub?id={token}")
    assert reply.status == 200
    assert _closes(parse_records(reply.body.decode())) == [{"type": 7, "error": "closed by the test"}]
