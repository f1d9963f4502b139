"""transports/recognize.py: a request's transport comes from the request, never from the priority order."""

from __future__ import annotations

import pytest

from gateway.protocol.transports import TRANSPORT_NAMES
from gateway.server.asgi import Request
from gateway.transports import BY_NAME, TRANSPORTS, recognize


def request(kind: str = "http", query: bytes = b"", accept: bytes = b"*/*") -> Request:
    return Request({"type": kind, "method": "GET", "path": "/", "query_string": query,
                    "headers": [(b"accept", accept)]})


@pytest.mark.parametrize("req, name", [
    (request("websocket"), "WebSockets"),
    (request(accept=b"text/event-stream"), "ServerSentEvents"),
    (request(query=b"id=T&transport=ForeverFrame&frame=f&origin=o"), "ForeverFrame"),
    (request(query=b"id=T"), "LongPolling"),
    (request(query=b"id=T&transport=ForeverFrame", accept=b"text/event-stream"), "ServerSentEvents"),
])
def test_each_request_is_recognised(req: Request, name: str) -> None:
    assert recognize(req) == name


def test_one_tuple_gives_the_order_and_every_name_has_a_transport() -> None:
    assert TRANSPORT_NAMES == ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
    assert tuple(t.name for t in TRANSPORTS) == TRANSPORT_NAMES
    assert set(BY_NAME) == set(TRANSPORT_NAMES)
