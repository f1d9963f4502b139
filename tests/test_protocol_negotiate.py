"""Negotiate: the query the server reads, the body it writes and the client reads back."""

from __future__ import annotations

import json

import pytest

from gateway.protocol.errors import ProtocolError
from gateway.protocol.negotiate import (
    NegotiateRequest,
    NegotiateResponse,
    error_body,
    parse_negotiate_query,
    parse_negotiate_response,
)

ALL = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
SPEC = ("WebSockets", "ServerSentEvents", "LongPolling")
FORMATS = {"WebSockets": ["Text", "Binary"], "ServerSentEvents": ["Text"], "ForeverFrame": ["Text"],
           "LongPolling": ["Text", "Binary"]}


@pytest.mark.parametrize(
    ("query", "request_"),
    [
        ({}, NegotiateRequest(0, False)),
        ({"negotiateVersion": "0"}, NegotiateRequest(0, False)),
        ({"negotiateVersion": "1"}, NegotiateRequest(1, False)),
        ({"negotiateVersion": "2"}, NegotiateRequest(1, False)),
        ({"negotiateVersion": "0001"}, NegotiateRequest(1, False)),
        ({"negotiateVersion": "1", "useStatefulReconnect": "true"}, NegotiateRequest(1, True)),
        ({"negotiateVersion": "1", "useStatefulReconnect": "True"}, NegotiateRequest(1, True)),
        ({"negotiateVersion": "1", "useStatefulReconnect": "false"}, NegotiateRequest(1, False)),
        ({"useStatefulReconnect": "true"}, NegotiateRequest(0, True)),
        ({"negotiateVersion": "1", "foreverFrame": "true"}, NegotiateRequest(1, False, forever_frame=True)),
        ({"negotiateVersion": "1", "foreverFrame": "TRUE"}, NegotiateRequest(1, False, forever_frame=True)),
        ({"negotiateVersion": "1", "foreverFrame": "false"}, NegotiateRequest(1, False)),
    ],
)
def test_negotiate_query(query: dict[str, str], request_: NegotiateRequest) -> None:
    assert parse_negotiate_query(query) == request_


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"negotiateVersion": "-1"}, "negotiateVersion must be a non-negative integer"),
        ({"negotiateVersion": "x"}, "negotiateVersion must be a non-negative integer"),
        ({"negotiateVersion": "1.0"}, "negotiateVersion must be a non-negative integer"),
        ({"negotiateVersion": ""}, "negotiateVersion must be a non-negative integer"),
        ({"negotiateVersion": " 1"}, "negotiateVersion must be a non-negative integer"),
        ({"negotiateVersion": "99999"}, "negotiateVersion must be a non-negative integer"),
        ({"negotiateVersion": "\u00b2"}, "negotiateVersion must be a non-negative integer"),
        ({"negotiateVersion": "\u0661"}, "negotiateVersion must be a non-negative integer"),
        ({"negotiateVersion": "1", "useStatefulReconnect": "yes"}, "useStatefulReconnect must be true or false"),
        ({"negotiateVersion": "1", "useStatefulReconnect": ""}, "useStatefulReconnect must be true or false"),
        ({"negotiateVersion": "1", "foreverFrame": "1"}, "foreverFrame must be true or false"),
    ],
)
def test_bad_negotiate_query(query: dict[str, str], error: str) -> None:
    with pytest.raises(ProtocolError, match=error) as info:
        parse_negotiate_query(query)
    assert info.value.status == 400


RESPONSES: list[tuple[NegotiateResponse, dict[str, object]]] = [
    (
        NegotiateResponse("cid", "tok", 1, ALL),
        {
            "connectionId": "cid", "negotiateVersion": 1, "connectionToken": "tok",
            "availableTransports": [{"transport": t, "transferFormats": FORMATS[t]} for t in ALL],
        },
    ),
    (
        NegotiateResponse("cid", "tok", 1, ("LongPolling",), stateful_reconnect=True),
        {
            "connectionId": "cid", "negotiateVersion": 1, "connectionToken": "tok",
            "availableTransports": [{"transport": "LongPolling", "transferFormats": ["Text", "Binary"]}],
            "useStatefulReconnect": True,
        },
    ),
    (
        NegotiateResponse("cid", None, 0, ("WebSockets",)),
        {
            "connectionId": "cid", "negotiateVersion": 0,
            "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}],
        },
    ),
]


@pytest.mark.parametrize(("response", "body"), RESPONSES)
def test_negotiate_response_both_ways(response: NegotiateResponse, body: dict[str, object]) -> None:
    assert response.to_json() == body
    assert parse_negotiate_response(json.dumps(body)) == response
    assert parse_negotiate_response(json.dumps(body).encode()) == response


def test_forever_frame_is_listed_only_on_request() -> None:
    assert NegotiateRequest(1, False).listed(ALL) == SPEC
    assert NegotiateRequest(1, True, forever_frame=True).listed(ALL) == ALL
    assert NegotiateRequest(1, False).listed(("ForeverFrame",)) == ()


def test_the_client_reads_each_transport_formats() -> None:
    parsed = parse_negotiate_response(json.dumps(NegotiateResponse("c", "t", 1, ALL).to_json()))
    assert {t: list(f) for t, f in parsed.formats.items()} == FORMATS
    assert parsed.carries("WebSockets", "Binary") and parsed.carries("LongPolling", "Binary")
    assert not parsed.carries("ServerSentEvents", "Binary") and not parsed.carries("ForeverFrame", "Binary")
    assert not parsed.carries("Carrier", "Text")
    legacy = parse_negotiate_response(b'{"connectionId":"c","availableTransports":[{"transport":"LongPolling"}]}')
    assert legacy.carries("LongPolling", "Text") and not legacy.carries("LongPolling", "Binary")


def test_transports_keep_the_server_order() -> None:
    order = ("LongPolling", "ForeverFrame", "WebSockets")
    assert parse_negotiate_response(json.dumps(NegotiateResponse("c", "t", 1, order).to_json())).transports == order


def test_token_is_the_connection_id_in_version_0() -> None:
    assert NegotiateResponse("cid", "tok", 1, ALL).token == "tok"
    assert NegotiateResponse("cid", None, 0, ALL).token == "cid"


def test_version_0_never_writes_a_token() -> None:
    assert "connectionToken" not in NegotiateResponse("cid", "tok", 0, ALL).to_json()


def test_error_body() -> None:
    assert error_body("no such hub") == {"error": "no such hub"}
    with pytest.raises(ProtocolError, match="negotiate refused: no such hub"):
        parse_negotiate_response(json.dumps(error_body("no such hub")))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<html>", "negotiate response is not JSON"),
        (b"\xff\xfe", "negotiate response is not JSON"),
        (b"[]", "negotiate response is not an object"),
        (b'{"connectionId":"c","negotiateVersion":1,"connectionToken":"t"}', "missing fields"),
        (b'{"negotiateVersion":1,"connectionToken":"t","availableTransports":[]}', "missing fields"),
        (b'{"connectionId":"c","negotiateVersion":1,"availableTransports":[]}', "missing fields"),
        (b'{"connectionId":5,"availableTransports":[]}', "wrong types"),
        (b'{"connectionId":"c","negotiateVersion":1,"connectionToken":7,"availableTransports":[]}', "wrong types"),
        (b'{"connectionId":"c","availableTransports":["WebSockets"]}', "missing fields"),
        (b'{"connectionId":"c","availableTransports":5}', "missing fields"),
        (b'{"connectionId":"c","negotiateVersion":"x","availableTransports":[]}', "missing fields"),
        (b'{"connectionId":"c","availableTransports":[{"transport":"WebSockets","transferFormats":5}]}', "missing"),
        (b'{"connectionId":"c","availableTransports":[["WebSockets"]]}', "missing fields"),
    ],
)
def test_bad_negotiate_response(body: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        parse_negotiate_response(body)
