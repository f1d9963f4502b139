"""Fixtures: a real uvicorn server (h11 + wsproto) serving the demo on a free port, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import pytest

from gateway.protocol.hubprotocols import PROTOCOLS
from gateway.protocol.transports import TRANSFER_FORMATS

TRANSPORT_NAMES = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")


class Wire(NamedTuple):
    """A hub protocol and a transport that can carry it."""

    protocol: str
    transport: str

    @property
    def id(self) -> str:
        return f"{self.protocol}-{self.transport}"


WIRES = tuple(
    Wire(name, transport) for name, protocol in PROTOCOLS.items() for transport in TRANSPORT_NAMES
    if protocol.transfer_format in TRANSFER_FORMATS[transport]
)
"""Every pair negotiate allows: JSON on the four transports, MessagePack on WebSockets and LongPolling."""


@dataclass(frozen=True)
class LiveServer:
    """The demo served by uvicorn; ``url(hub)`` is a hub's base URL."""

    host: str
    port: int

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, hub: str = "echo") -> str:
        return f"{self.origin}/hubs/{hub}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    import uvicorn

    from gateway import Settings
    from gateway.demo.app import create_app

    # the suite asks for unknown tokens on purpose
    app = create_app(settings=Settings(poll_timeout=5.0, bad_token_limit=1_000_000))
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http="h11", ws="wsproto", log_level="warning",
        timeout_graceful_shutdown=1, access_log=False,
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield LiveServer("127.0.0.1", port)
    uvicorn_server.should_exit = True
    thread.join(10)


@pytest.fixture(params=TRANSPORT_NAMES)
def transport(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs once per transport, in the server's priority order."""
    name: str = request.param
    return name


@pytest.fixture(params=WIRES, ids=[w.id for w in WIRES])
def wire(request: pytest.FixtureRequest) -> Wire:
    """Each test that takes this runs once per hub protocol and transport pair that negotiate allows."""
    pair: Wire = request.param
    return pair
