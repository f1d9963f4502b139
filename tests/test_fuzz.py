"""Fuzzing: every parser, fed arbitrary bytes or text, answers only with its documented errors
(ProtocolError, of which MessageTooLarge is one), never another exception; the framings round-trip any payload;
and a real server answers arbitrary POST bodies and negotiate queries with 200/400/413 only, staying up for
everyone else.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from live import HANDSHAKE, RS, Live, RawWebSocket, negotiate, post, request, serve_gateways, wait_until
from wsproto.events import BytesMessage

from gateway import Gateway, Limits, Settings
from gateway.demo.hubs import EchoHub
from gateway.protocol import Connection, ProtocolError, framing, hubjson
from gateway.protocol.errors import MessageTooLarge
from gateway.protocol.framing import ForeverFrameParser, SSEParser
from gateway.protocol.messages import Invocation, UnknownMessage
from gateway.protocol.negotiate import (
    NegotiateRequest,
    NegotiateResponse,
    parse_negotiate_query,
    parse_negotiate_response,
)

DEEP = "[" * 100_000
"""Nesting deeper than the interpreter's recursion limit: json raises RecursionError, not ValueError."""

# --- strategies ---------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["type", "target", "arguments", "invocationId", "streamIds", "headers", "item", "result", "error",
          "allowReconnect", "sequenceId", "protocol", "version"]
# Objects shaped like hub messages, with the right keys and any values: they reach past the JSON decoder.
message_like = st.fixed_dictionaries(
    {"type": st.integers(-1, 11) | json_values},
    optional={name: json_values | st.integers() for name in FIELDS[1:]},
).map(lambda obj: json.dumps(obj, allow_nan=True))
record_text = st.one_of(st.text(), message_like, st.just(DEEP), st.sampled_from(["1e999", "NaN", '{"type":1e999}']))
chunks = st.lists(st.text(max_size=40) | st.sampled_from([RS, HANDSHAKE, '{"type":6}' + RS]), max_size=12)


def only_protocol_errors(call: Any, *args: Any) -> Any:
    """Run a parser; a ProtocolError is a valid answer (returned as None), anything else fails the test."""
    try:
        return call(*args)
    except ProtocolError:
        return None


# --- the hub protocol ---------------------------------------------------------------------------


@settings(max_examples=300)
@given(record_text)
@example(DEEP)
@example('{"type":1,"target":"x","arguments":[],"headers":{"a":1}}')
@example('{"type":3,"invocationId":"1","result":1,"error":"e"}')
def test_parse_message_answers_a_message_or_a_protocol_error(record: str) -> None:
    message = only_protocol_errors(hubjson.parse_message, record)
    if message is not None and not isinstance(message, UnknownMessage):  # what parses can be written back
        assert hubjson.parse_message(hubjson.encode(message)[:-1]) == message


@given(record_text)
@example(DEEP)
def test_the_handshake_parsers_answer_a_value_or_a_protocol_error(record: str) -> None:
    only_protocol_errors(hubjson.parse_handshake_request, record)
    only_protocol_errors(hubjson.parse_handshake_response, record)


@given(chunks, st.integers(1, 64))
def test_the_record_reader_splits_any_text_and_loses_nothing(parts: list[str], limit: int) -> None:
    reader = hubjson.RecordReader(limit)
    records: list[str] = []
    fed = ""
    for part in parts:
        try:
            records += reader.feed(part)
        except MessageTooLarge as exc:
            assert exc.status == 413
            return
        fed += part
    assert "".join(r + RS for r in records) + reader.buffered == fed
    assert all(len(r.encode("utf-8", "surrogatepass")) <= limit for r in records)


@settings(max_examples=300)
@given(st.booleans(), st.booleans(), chunks)
def test_a_connection_fed_any_text_raises_only_protocol_errors(stateful: bool, handshaken: bool,
                                                               parts: list[str]) -> None:
    conn = Connection(0.0, stateful=stateful, limits=Limits(max_message_size=256))
    conn.attach(0.0)
    if handshaken:
        conn.receive(HANDSHAKE, 0.0)
    for now, part in enumerate(parts):
        try:
            conn.receive(part, float(now))
        except ProtocolError:
            conn.close("protocol error")
            break
        conn.take(float(now))  # what it answers is always writable
    conn.tick(1e6)


# --- negotiate ----------------------------------------------------------------------------------


@given(st.dictionaries(st.sampled_from(["negotiateVersion", "useStatefulReconnect", "foreverFrame", "id", ""])
                       | st.text(),
                       st.text() | st.sampled_from(["1", "0", "true", "TRUE", "99999", "-1", "1.0", "\u0661"])))
def test_the_negotiate_query_parses_or_is_a_protocol_error(query: dict[str, str]) -> None:
    parsed = only_protocol_errors(parse_negotiate_query, query)
    assert parsed is None or (isinstance(parsed, NegotiateRequest) and parsed.version in (0, 1))


negotiate_like = st.fixed_dictionaries(
    {},
    optional={"connectionId": json_values, "connectionToken": json_values, "negotiateVersion": json_values,
              "availableTransports": json_values
              | st.lists(st.dictionaries(st.sampled_from(["transport", "transferFormats"]), json_values)),
              "useStatefulReconnect": json_values, "error": json_values},
).map(lambda obj: json.dumps(obj, allow_nan=True).encode())


@settings(max_examples=300)
@given(st.binary() | negotiate_like)
@example(DEEP.encode())
@example(b'{"connectionId":"a","connectionToken":"b","negotiateVersion":1e999,"availableTransports":[]}')
@example(b'{"connectionId":"a","connectionToken":"b","negotiateVersion":-1e999,"availableTransports":[]}')
@example(b'{"connectionId":"a","negotiateVersion":1,"availableTransports":[{"transport":' + DEEP.encode() + b"}]}")
def test_a_negotiate_response_parses_or_is_a_protocol_error(body: bytes) -> None:
    parsed = only_protocol_errors(parse_negotiate_response, body)
    assert parsed is None or isinstance(parsed, NegotiateResponse)


# --- SSE and ForeverFrame framing ---------------------------------------------------------------


def feed_split(feed: Any, data: bytes, cuts: list[int]) -> list[Any]:
    out: list[Any] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out += feed(data[start:cut])
        start = cut
    return out


@settings(max_examples=300)
@given(st.lists(st.text(), max_size=5), st.data())
def test_sse_round_trips_any_payloads_split_anywhere(payloads: list[str], data: st.DataObject) -> None:
    stream = framing.SSE_PRELUDE + b"".join(framing.sse_event(p) + framing.SSE_COMMENT for p in payloads)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    # SSE carries lines: a CR or CRLF in a payload comes back as LF. Records are JSON and never hold one.
    assert feed_split(SSEParser().feed, stream, cuts) == [p.replace("\r\n", "\n").replace("\r", "\n") for p in payloads]


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), max_size=10), st.integers(8, 1 << 20))
def test_the_sse_parser_takes_any_bytes(parts: list[bytes], limit: int) -> None:
    parser = SSEParser(max_event=limit)
    for part in parts:
        events = only_protocol_errors(parser.feed, part)
        if events is None:
            return
        assert all(isinstance(e, str) for e in events)


any_text = st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates included
PRELUDE = framing.ff_prelude("https://app.example", "f")
UNSAFE = [b"<", b">", "\u2028".encode(), "\u2029".encode()]


@settings(max_examples=300)
@given(st.lists(any_text, max_size=5), st.data())
def test_forever_frame_round_trips_any_payloads_split_anywhere(payloads: list[str], data: st.DataObject) -> None:
    chunks_ = [framing.ff_chunk(p) for p in payloads]
    for chunk in chunks_:
        inner = chunk[len(b"<script>g("):-len(b")</script>\n")]
        assert not any(bad in inner for bad in UNSAFE), chunk  # nothing can end the script or open markup
    stream = PRELUDE + b"".join(chunks_) + framing.FF_END + b"</body></html>"
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    assert feed_split(ForeverFrameParser().feed, stream, cuts) == [*payloads, None]


@settings(max_examples=300)
@given(st.booleans(), st.lists(st.binary(max_size=64) | st.sampled_from([b"<script>g(", b")</script>", b'"x"']),
                                max_size=10))
@example(True, [b"<script>g(" + DEEP.encode() + b")</script>"])
@example(True, [b'<script>g("\xff")</script>'])
@example(True, [b"<script>g(1e999)</script>"])
def test_the_forever_frame_parser_takes_any_bytes(after_prelude: bool, parts: list[bytes]) -> None:
    parser = ForeverFrameParser(max_chunk=1 << 20)
    if after_prelude:
        assert parser.feed(PRELUDE) == []
    for part in parts:
        payloads = only_protocol_errors(parser.feed, part)
        if payloads is None:
            return
        assert all(p is None or isinstance(p, str) for p in payloads)


# --- a real server ------------------------------------------------------------------------------

MAX_BODY = 4096


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateway = Gateway(EchoHub, name="hub", settings=Settings(max_message_size=1024, handshake_timeout=2.0,
                                                                 max_body=MAX_BODY, bad_token_limit=1_000_000))
    with serve_gateways({"/hub": gateway}) as server:
        yield server


@pytest.fixture(scope="module")
def bystander(live: Live) -> Iterator[RawWebSocket]:
    """A connection that does nothing wrong while the fuzzing goes on beside it."""
    token = negotiate(live.port)["connectionToken"]
    ws = RawWebSocket(live.port, f"/hub?id={token}")
    ws.send_text(HANDSHAKE)
    assert ws.records(lambda r: bool(r)) == ["{}"]
    yield ws
    ws.close()


def assert_unaffected(ws: RawWebSocket, tag: str) -> None:
    ws.send_text(hubjson.encode(Invocation("Echo", [tag], tag)))
    records = ws.records(lambda r: any(tag in x and '"type":3' in x for x in r))
    assert any(f'"result":"{tag}"' in r for r in records), records


bodies = st.one_of(
    st.binary(max_size=MAX_BODY + 200),
    st.lists(record_text | st.just(HANDSHAKE[:-1]), max_size=6)
    .map(lambda rs: (RS.join(rs) + RS).encode("utf-8", "surrogatepass")),
    st.integers(MAX_BODY - 2, MAX_BODY + 2).map(lambda n: b"{}" + b" " * (n - 3) + b"\x1e"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.booleans(), bodies)
def test_any_post_body_gets_200_400_or_413_and_nobody_else_notices(
    live: Live, bystander: RawWebSocket, handshaken: bool, body: bytes,
) -> None:
    token = negotiate(live.port)["connectionToken"]
    assert request(live.port, "GET", f"/hub?id={token}").status == 200
    if handshaken:
        assert post(live.port, "/hub", token, HANDSHAKE).status == 200
    reply = post(live.port, "/hub", token, body)
    assert reply.status in (200, 400, 413), (reply.status, reply.body)
    if reply.status != 200:
        assert isinstance(reply.error, str) and reply.error
    request(live.port, "DELETE", f"/hub?id={token}")


queries = st.one_of(
    st.text().map(lambda t: urllib.parse.quote(t, safe="=&")),
    st.dictionaries(st.sampled_from(["negotiateVersion", "useStatefulReconnect"]) | st.text(max_size=5),
                    st.text(max_size=8) | st.sampled_from(["1", "true", "0", "2", "-1"]), max_size=3)
    .map(urllib.parse.urlencode),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(queries)
def test_any_negotiate_query_gets_200_or_400(live: Live, query: str) -> None:
    reply = request(live.port, "POST", "/hub/negotiate?" + query.replace("#", "%23"))
    assert reply.status in (200, 400), (reply.status, reply.body)
    if reply.status == 200:
        body = reply.json()
        request(live.port, "DELETE", f"/hub?id={body.get('connectionToken', body['connectionId'])}")
    else:
        assert reply.error


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.booleans(), st.text(max_size=2000) | message_like | st.binary(max_size=100))
def test_any_websocket_frame_is_answered_or_closes_that_connection_only(
    live: Live, bystander: RawWebSocket, handshaken: bool, frame: str | bytes,
) -> None:
    token = negotiate(live.port)["connectionToken"]
    ws = RawWebSocket(live.port, f"/hub?id={token}", timeout=2)
    if handshaken:
        ws.send_text(HANDSHAKE)
        assert ws.records(lambda r: bool(r)) == ["{}"]
    if isinstance(frame, bytes):
        ws.sock.sendall(ws.ws.send(BytesMessage(data=frame)))
    else:
        ws.send_text(frame)
    ws.send_text(hubjson.encode(Invocation("Echo", ["probe"], "probe")))
    records = ws.records(lambda r: any('"invocationId":"probe"' in x or '"type":7' in x for x in r), timeout=3)
    answered = any('"invocationId":"probe"' in r for r in records)
    if not answered and ws.closed is None and not ws.eof:
        ws.records(lambda r: False, timeout=3)  # a refused handshake or a Close message: the socket closes next
    closed = ws.closed is not None or ws.eof
    assert answered or closed, f"the server neither answered nor closed: {records}"
    if closed:
        assert token not in live.gateways["/hub"].registry.by_token
    ws.close()
    request(live.port, "DELETE", f"/hub?id={token}")


@pytest.mark.parametrize(("frame", "code", "error"), [
    (b"\x00binary", 1003, "binary frames are not supported; use the Text transfer format"),
    ("not json" + RS, 1002, "invalid JSON: Expecting value at position 0"),
    ("x" * 1100, 1009, "message of 1100 bytes exceeds the limit of 1024 bytes"),
])
def test_a_bad_websocket_frame_gets_the_close_message_then_a_close_frame_with_its_code(
    live: Live, frame: str | bytes, code: int, error: str,
) -> None:
    token = negotiate(live.port)["connectionToken"]
    ws = RawWebSocket(live.port, f"/hub?id={token}")
    ws.send_text(HANDSHAKE)
    assert ws.records(lambda r: bool(r)) == ["{}"]
    if isinstance(frame, bytes):
        ws.sock.sendall(ws.ws.send(BytesMessage(data=frame)))
    else:
        ws.send_text(frame)
    records = ws.records(lambda r: False, timeout=3)
    assert [json.loads(r) for r in records] == [{"type": 7, "error": error}]
    assert ws.closed is not None and ws.closed.code == code


def test_after_the_fuzzing_the_bystander_is_still_served(live: Live, bystander: RawWebSocket) -> None:
    assert_unaffected(bystander, "still-here")
    live.call(lambda: None)  # the server's loop is responsive
    # Every fuzzed connection is gone (deleted, or timed out before its handshake); the bystander stays.
    assert wait_until(lambda: len(live.gateways["/hub"].registry) == 1, timeout=4)
