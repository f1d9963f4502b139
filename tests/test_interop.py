"""Interop with strict third-party clients, on a real uvicorn: negotiate lists the spec's transports (ForeverFrame
only on request) with their transfer formats, the JSON handshake takes version 0, ``gateway demo`` sends no
WebSocket Ping frame unless asked, and each hub serves the MessagePack JS entry beside the client."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources

import pytest
from live import RS, Live, RawWebSocket, free_port, negotiate, request, serve_gateways

from gateway import Gateway, Hub
from gateway.client import HubClient

SPEC = ["WebSockets", "ServerSentEvents", "LongPolling"]
ALL = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]
FORMATS = {"WebSockets": ["Text", "Binary"], "ServerSentEvents": ["Text"], "ForeverFrame": ["Text"],
           "LongPolling": ["Text", "Binary"]}
PING_RECORD = '{"type":6}'


class EchoHub(Hub):
    async def echo(self, x: object) -> object:
        return x


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with serve_gateways({"/hub": Gateway(EchoHub)}) as live:
        yield live


def listed(body: dict[str, object]) -> list[str]:
    transports = body["availableTransports"]
    assert isinstance(transports, list)
    return [t["transport"] for t in transports]


@pytest.mark.parametrize("query", ["negotiateVersion=1", "negotiateVersion=0", "negotiateVersion=1&foreverFrame=false",
                                   "negotiateVersion=1&useStatefulReconnect=true"])
def test_negotiate_without_the_opt_in_lists_exactly_the_spec_transports(live: Live, query: str) -> None:
    assert listed(negotiate(live.port, query=query)) == SPEC


def test_negotiate_lists_forever_frame_to_a_client_that_asks(live: Live) -> None:
    assert listed(negotiate(live.port, query="negotiateVersion=1&foreverFrame=true")) == ALL
    refused = request(live.port, "POST", "/hub/negotiate?negotiateVersion=1&foreverFrame=yes")
    assert refused.status == 400 and refused.error == "foreverFrame must be true or false"


def test_negotiate_lists_each_transport_transfer_formats(live: Live) -> None:
    body = negotiate(live.port, query="negotiateVersion=1&foreverFrame=true")
    assert {t["transport"]: t["transferFormats"] for t in body["availableTransports"]} == FORMATS


async def test_our_python_client_asks_for_forever_frame_and_gets_it(live: Live) -> None:
    client = HubClient(live.url(), transport="ForeverFrame")
    await client.start()
    try:
        assert client.transport == "ForeverFrame"
        assert await client.invoke("Echo", "hi") == "hi"
    finally:
        await client.close()


def handshake_over_websocket(port: int, version: int) -> tuple[RawWebSocket, str]:
    token = negotiate(port)["connectionToken"]
    ws = RawWebSocket(port, f"/hub?id={token}")
    ws.send_text(json.dumps({"protocol": "json", "version": version}) + RS)
    return ws, ws.records(lambda r: bool(r))[0]


@pytest.mark.parametrize("version", [0, 1])
def test_json_handshake_version_0_and_1_succeed(live: Live, version: int) -> None:
    ws, response = handshake_over_websocket(live.port, version)
    try:
        assert response == "{}"
        ws.send_text('{"type":1,"invocationId":"1","target":"Echo","arguments":[7]}' + RS)
        assert ws.records(lambda r: bool(r))[0] == '{"type":3,"invocationId":"1","result":7}'
    finally:
        ws.close()


def test_json_handshake_beyond_our_version_is_refused(live: Live) -> None:
    ws, response = handshake_over_websocket(live.port, 3)
    try:
        assert json.loads(response) == {"error": "Requested protocol 'json' version 3 is not available."}
    finally:
        ws.close()


@pytest.mark.parametrize(("path", "static", "marker"), [
    ("/hub/client.js", "gateway.js", b"HubConnectionState"),
    ("/hub/client.msgpack.js", "gateway.msgpack.js", b"MessagePackHubProtocol"),
    ("/hub/client.trace.js", "gateway.trace.js", b"traced"),
    ("/hub/client.job.js", "gateway.job.js", b'"gateway-job"'),
    ("/hub/client.shared.js", "gateway.shared.js", b"SharedHubConnection"),
    ("/hub/client.worker.js", "gateway.worker.js", b"onconnect"),
])
def test_each_hub_serves_the_client_and_its_optional_entries(live: Live, path: str, static: str, marker: bytes) -> None:
    reply = request(live.port, "GET", path)
    assert reply.status == 200 and reply.headers["content-type"] == "text/javascript; charset=utf-8"
    assert reply.body == resources.files("gateway").joinpath("static", static).read_bytes()
    assert marker in reply.body
    assert (b"MessagePackHubProtocol" in reply.body) == path.endswith(".msgpack.js")
    assert (b'"gateway-job"' in reply.body) == path.endswith(".job.js")


@contextlib.contextmanager
def demo(*options: str) -> Iterator[int]:
    """``gateway demo`` in a subprocess on a free port, with SignalR pings every second."""
    port = free_port()
    command = [sys.executable, "-m", "gateway", "demo", "--port", str(port), "--job-workers", "0",
               "--set", "keepalive_interval=1", "--log-level", "warning", *options]
    process = subprocess.Popen(command, env={**os.environ}, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("gateway demo did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def watch_websocket(port: int, seconds: float) -> tuple[RawWebSocket, list[str]]:
    """A raw WebSocket on the demo's echo hub, after the handshake, read for ``seconds``."""
    token = negotiate(port, "/hubs/echo")["connectionToken"]
    ws = RawWebSocket(port, f"/hubs/echo?id={token}", timeout=seconds + 5)
    ws.send_text(json.dumps({"protocol": "json", "version": 1}) + RS)
    deadline = time.monotonic() + seconds
    records = ws.records(lambda r: time.monotonic() > deadline, timeout=seconds)
    return ws, records


def test_gateway_demo_sends_no_websocket_ping_frame_by_default() -> None:
    """Longer than uvicorn's default ping interval (20 s): SignalR Ping records arrive, Ping frames do not."""
    with demo() as port:
        ws, records = watch_websocket(port, 22.0)
        try:
            assert records[0] == "{}" and records.count(PING_RECORD) >= 15
            assert ws.pings == [] and ws.closed is None
        finally:
            ws.close()


def _wsproto_pings() -> bool:
    """Whether the installed uvicorn's wsproto implementation (the one ``gateway demo`` runs) sends Ping frames at
    all: older releases (0.29, the lowest allowed) have no ping there, whatever the interval."""
    from uvicorn.protocols.websockets import wsproto_impl

    return "ping_interval" in inspect.getsource(wsproto_impl)


def test_gateway_demo_sends_websocket_ping_frames_when_asked() -> None:
    """With ``--ws-ping-interval`` the server pings again, where uvicorn's wsproto implementation can."""
    with demo("--ws-ping-interval", "0.5") as port:
        ws, records = watch_websocket(port, 2.0)
        try:
            assert records[0] == "{}" and ws.closed is None
            assert len(ws.pings) >= 2 if _wsproto_pings() else ws.pings == []
        finally:
            ws.close()
