"""The JSON hub protocol: one table of (message, record) used both ways, the reader, and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol import hubjson
from gateway.protocol.errors import MessageTooLarge, ProtocolError
from gateway.protocol.hubjson import RS, RecordReader
from gateway.protocol.messages import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HandshakeRequest,
    HandshakeResponse,
    HubMessage,
    Invocation,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
    UnknownMessage,
    is_trackable,
)

# (message, its record without the 0x1E), used to encode and to parse.
CASES: list[tuple[HubMessage, str]] = [
    (Invocation("Echo", ["x"], "1"), '{"type":1,"invocationId":"1","target":"Echo","arguments":["x"]}'),
    (Invocation("echo", ["x", 2, None]), '{"type":1,"target":"echo","arguments":["x",2,null]}'),
    (
        Invocation("Up", [], "7", ["s1", "s2"]),
        '{"type":1,"invocationId":"7","target":"Up","arguments":[],"streamIds":["s1","s2"]}',
    ),
    (Invocation("m", [{"a": [1.5, True]}]), '{"type":1,"target":"m","arguments":[{"a":[1.5,true]}]}'),
    (Invocation("m", ["é\u2028</script>\x1e"]), '{"type":1,"target":"m","arguments":["é\u2028</script>\\u001e"]}'),
    (StreamInvocation("Count", [3], "2"), '{"type":4,"invocationId":"2","target":"Count","arguments":[3]}'),
    (
        StreamInvocation("Up", [], "3", ["s"]),
        '{"type":4,"invocationId":"3","target":"Up","arguments":[],"streamIds":["s"]}',
    ),
    (StreamItem("2", {"n": 1}), '{"type":2,"invocationId":"2","item":{"n":1}}'),
    (StreamItem("2", None), '{"type":2,"invocationId":"2","item":null}'),
    (Completion("1", "x", None, True), '{"type":3,"invocationId":"1","result":"x"}'),
    (Completion("1", None, None, True), '{"type":3,"invocationId":"1","result":null}'),
    (Completion("1"), '{"type":3,"invocationId":"1"}'),
    (Completion("1", error="boom"), '{"type":3,"invocationId":"1","error":"boom"}'),
    (CancelInvocation("4"), '{"type":5,"invocationId":"4"}'),
    (Ping(), '{"type":6}'),
    (Close(), '{"type":7}'),
    (Close("bye"), '{"type":7,"error":"bye"}'),
    (Close("bye", True), '{"type":7,"error":"bye","allowReconnect":true}'),
    (Close(None, True), '{"type":7,"allowReconnect":true}'),
    (Ack(3), '{"type":8,"sequenceId":3}'),
    (Sequence(4), '{"type":9,"sequenceId":4}'),
]


@pytest.mark.parametrize(("message", "record"), CASES)
def test_encode(message: HubMessage, record: str) -> None:
    assert hubjson.encode(message) == record + RS


@pytest.mark.parametrize(("message", "record"), CASES)
def test_parse(message: HubMessage, record: str) -> None:
    assert hubjson.parse_message(record) == message


def test_headers_are_written_and_read() -> None:
    message = Invocation("m", [], "1", headers={"trace": "abc"})
    record = '{"type":1,"invocationId":"1","target":"m","arguments":[],"headers":{"trace":"abc"}}'
    assert hubjson.encode(message) == record + RS
    assert hubjson.parse_message(record).headers == {"trace": "abc"}  # type: ignore[union-attr]
    assert hubjson.parse_message('{"type":5,"invocationId":"1","headers":{"a":"b"}}').headers == {"a": "b"}  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", [0, 10, 42, -1, 2**70])
def test_unknown_message_types_parse_to_a_message_to_ignore(kind: int) -> None:
    # As SignalR's protocol libraries do: later protocol versions may add types, and old peers ignore them.
    assert hubjson.parse_message(f'{{"type":{kind},"anything":[1]}}') == UnknownMessage(kind)
    assert not is_trackable(UnknownMessage(kind))


def test_unknown_properties_are_ignored() -> None:
    assert hubjson.parse_message('{"type":6,"extra":[1,2]}') == Ping()
    assert hubjson.parse_message('{"type":8,"sequenceId":1,"x":null}') == Ack(1)


def test_encode_invocation_matches_encode() -> None:
    assert hubjson.encode_invocation("progress", [{"seq": 1}]) == hubjson.encode(Invocation("progress", [{"seq": 1}]))


def test_trackable_messages() -> None:
    kinds = {type(m).__name__ for m, _ in CASES if is_trackable(m)}
    assert kinds == {"Invocation", "StreamInvocation", "StreamItem", "Completion", "CancelInvocation"}


def test_to_json_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="not a hub message"):
        hubjson.to_json("nope")  # type: ignore[arg-type]


# --- malformed records ------------------------------------------------------------------------

MALFORMED: list[tuple[str, str]] = [
    ("not json", "invalid JSON"),
    ('{"type":1,', "invalid JSON"),
    ("", "invalid JSON"),
    ("[1]", "must be a JSON object"),
    ('"x"', "must be a JSON object"),
    ("{}", "missing required property 'type'"),
    ('{"type":"1"}', "property 'type' has the wrong type"),
    ('{"type":true}', "property 'type' has the wrong type"),
    ('{"type":1.0}', "property 'type' has the wrong type"),
    ('{"type":1,"arguments":[]}', "missing required property 'target'"),
    ('{"type":1,"target":"a"}', "missing required property 'arguments'"),
    ('{"type":1,"target":5,"arguments":[]}', "property 'target' has the wrong type"),
    ('{"type":1,"target":"a","arguments":{}}', "property 'arguments' has the wrong type"),
    ('{"type":1,"target":"a","arguments":[],"invocationId":1}', "property 'invocationId' has the wrong type"),
    ('{"type":1,"target":"a","arguments":[],"streamIds":[1]}', "streamIds must be strings"),
    ('{"type":1,"target":"a","arguments":[],"streamIds":"s"}', "property 'streamIds' has the wrong type"),
    ('{"type":1,"target":"a","arguments":[],"headers":{"a":1}}', "header values must be strings"),
    ('{"type":1,"target":"a","arguments":[],"headers":[]}', "property 'headers' has the wrong type"),
    ('{"type":4,"target":"a","arguments":[]}', "missing required property 'invocationId'"),
    ('{"type":2,"invocationId":"1"}', "missing required property 'item'"),
    ('{"type":2,"item":1}', "missing required property 'invocationId'"),
    ('{"type":3}', "missing required property 'invocationId'"),
    ('{"type":3,"invocationId":"1","result":1,"error":"e"}', "both a result and an error"),
    ('{"type":3,"invocationId":"1","error":5}', "property 'error' has the wrong type"),
    ('{"type":5}', "missing required property 'invocationId'"),
    ('{"type":7,"error":1}', "property 'error' has the wrong type"),
    ('{"type":7,"allowReconnect":"yes"}', "property 'allowReconnect' has the wrong type"),
    ('{"type":8}', "missing required property 'sequenceId'"),
    ('{"type":8,"sequenceId":"1"}', "property 'sequenceId' has the wrong type"),
    ('{"type":9,"sequenceId":1.5}', "property 'sequenceId' has the wrong type"),
    ('{"type":9,"sequenceId":false}', "property 'sequenceId' has the wrong type"),
    ('{"type":1,"target":"a","arguments":[NaN]}', "NaN is not a JSON value"),
    ('{"type":1,"target":"a","arguments":[Infinity]}', "Infinity is not a JSON value"),
    ('{"type":1,"target":"a","arguments":[-Infinity]}', "-Infinity is not a JSON value"),
    ('{"type":1,"target":"a","arguments":[1e400]}', "out of range"),
    ('{"type":1,"target":"a","arguments":[' + "1" * 5000 + "]}", "invalid JSON"),
    ("[" * 100_000 + "]" * 100_000, "invalid JSON"),
]


@pytest.mark.parametrize(("record", "error"), MALFORMED, ids=[r[:40] for r, _ in MALFORMED])
def test_malformed_records(record: str, error: str) -> None:
    with pytest.raises(ProtocolError, match=error) as info:
        hubjson.parse_message(record)
    assert info.value.status == 400
    assert info.value.ws_code == 1002


def test_lone_surrogate_is_echoed_as_valid_utf8() -> None:
    message = hubjson.parse_message('{"type":1,"target":"a","arguments":["\\ud800é"]}')
    record = hubjson.encode(message)
    assert record.encode("utf-8") == b'{"type":1,"target":"a","arguments":["\\ud800\\u00e9"]}\x1e'
    assert hubjson.parse_message(record[:-1]) == message


# --- handshake --------------------------------------------------------------------------------


def test_handshake_request_both_ways() -> None:
    record = '{"protocol":"json","version":1}'
    assert hubjson.encode_handshake_request() == record + RS
    assert hubjson.parse_handshake_request(record) == HandshakeRequest("json", 1)
    assert hubjson.parse_handshake_request('{"version":2,"protocol":"messagepack"}') == HandshakeRequest(
        "messagepack", 2
    )


def test_handshake_response_both_ways() -> None:
    assert hubjson.encode_handshake_response() == "{}" + RS == hubjson.HANDSHAKE_OK
    assert hubjson.parse_handshake_response("{}") == HandshakeResponse()
    assert hubjson.encode_handshake_response("nope") == '{"error":"nope"}' + RS
    assert hubjson.parse_handshake_response('{"error":"nope"}') == HandshakeResponse("nope")


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ('{"protocol":"json"}', "missing required property 'version'"),
        ('{"version":1}', "missing required property 'protocol'"),
        ('{"protocol":"json","version":"1"}', "property 'version' has the wrong type"),
        ('{"protocol":1,"version":1}', "property 'protocol' has the wrong type"),
        ('{"protocol":"json","version":true}', "property 'version' has the wrong type"),
        ("protocol=json", "invalid JSON"),
        ('["json",1]', "must be a JSON object"),
    ],
)
def test_bad_handshake_request(record: str, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        hubjson.parse_handshake_request(record)


def test_bad_handshake_response() -> None:
    with pytest.raises(ProtocolError, match="property 'error' has the wrong type"):
        hubjson.parse_handshake_response('{"error":3}')


# --- RecordReader -------------------------------------------------------------------------------

STREAM = "".join(record + RS for _, record in CASES)
RECORDS = [record for _, record in CASES]


def test_reader_whole_input() -> None:
    reader = RecordReader()
    assert reader.feed(STREAM) == RECORDS
    assert not reader.pending


def test_reader_one_character_at_a_time() -> None:
    reader = RecordReader()
    out: list[str] = []
    for char in STREAM:
        out += reader.feed(char)
    assert out == RECORDS
    assert not reader.pending


def test_reader_trailing_data() -> None:
    reader = RecordReader()
    assert reader.feed(STREAM + '{"type":') == RECORDS
    assert reader.pending
    assert reader.feed("6}") == []
    assert reader.feed(RS + '{"type":8,"sequenceId":1}' + RS) == ['{"type":6}', '{"type":8,"sequenceId":1}']
    assert not reader.pending


def test_reader_empty_records_are_kept() -> None:
    assert RecordReader().feed(RS + RS) == ["", ""]


@given(st.lists(st.text(alphabet=st.characters(exclude_characters=RS)), max_size=8), st.data())
def test_reader_any_split(records: list[str], data: st.DataObject) -> None:
    stream = "".join(r + RS for r in records)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    reader = RecordReader(max_size=1 << 20)
    out: list[str] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out += reader.feed(stream[start:cut])
        start = cut
    assert out == records


def test_reader_limit_is_inclusive() -> None:
    reader = RecordReader(max_size=10)
    assert reader.feed("x" * 10 + RS) == ["x" * 10]
    with pytest.raises(MessageTooLarge, match="message of 11 bytes exceeds the limit of 10 bytes") as info:
        reader.feed("x" * 11 + RS)
    assert info.value.status == 413
    assert info.value.ws_code == 1009


def test_reader_limit_counts_utf8_bytes() -> None:
    assert RecordReader(max_size=10).feed("é" * 5 + RS) == ["é" * 5]
    with pytest.raises(MessageTooLarge, match="message of 12 bytes"):
        RecordReader(max_size=10).feed("é" * 6 + RS)
    with pytest.raises(MessageTooLarge, match="message of 12 bytes"):
        RecordReader(max_size=10).feed("😀" * 3)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, len(RECORDS), len(RECORDS) + 1])
def test_reader_limited_feed_returns_batches_in_order(limit: int) -> None:
    reader = RecordReader()
    batches = [reader.feed(STREAM + '{"type":', limit)]
    while reader.backlog:
        assert reader.pending
        batches.append(reader.feed("", limit))
    assert all(0 < len(batch) <= limit for batch in batches)
    assert [r for batch in batches for r in batch] == RECORDS
    assert reader.buffered == '{"type":'
    assert reader.feed("6}" + RS, limit) == ['{"type":6}']
    assert not reader.pending and not reader.backlog


@pytest.mark.parametrize("size", [10, 100_000])
def test_reader_limited_feed_of_long_or_short_records(size: int) -> None:
    reader = RecordReader(max_size=1 << 20)
    text = ("x" * size + RS) * 3
    assert reader.feed(text + "y", 3) == ["x" * size] * 3
    assert not reader.backlog and reader.buffered == "y"
    assert reader.feed(RS + text, 2) == ["y", "x" * size]
    assert reader.backlog
    assert reader.feed("", 0) == ["x" * size] * 2
    assert not reader.pending


def test_reader_text_fed_during_a_backlog_follows_it() -> None:
    reader = RecordReader()
    assert reader.feed("a" + RS + "b" + RS + "c", 1) == ["a"]
    assert reader.feed(RS + "d" + RS, 2) == ["b", "c"]
    assert reader.feed("", 2) == ["d"]
    assert not reader.backlog


def test_reader_limited_feed_checks_each_record_it_reaches() -> None:
    reader = RecordReader(max_size=10)
    assert reader.feed("x" + RS + "y" * 11 + RS, 1) == ["x"]
    with pytest.raises(MessageTooLarge, match="message of 11 bytes"):
        reader.feed("", 1)
    with pytest.raises(MessageTooLarge, match="message of 11 bytes"):
        RecordReader(max_size=10).feed("x" + RS + "y" * 11, 5)


def test_reader_limit_applies_to_a_partial_record() -> None:
    reader = RecordReader(max_size=100)
    reader.feed("x" * 60)
    with pytest.raises(MessageTooLarge):
        reader.feed("x" * 41)


# --- round trip of any message ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ids = st.text(min_size=1, max_size=8)
stream_ids = st.none() | st.lists(st.text(), min_size=1, max_size=3)
messages: st.SearchStrategy[HubMessage] = st.one_of(
    st.builds(Invocation, st.text(), st.lists(json_values, max_size=4), st.none() | ids, stream_ids),
    st.builds(StreamInvocation, st.text(), st.lists(json_values, max_size=4), ids, stream_ids),
    st.builds(StreamItem, ids, json_values),
    st.builds(lambda i, r: Completion(i, r, None, True), ids, json_values),
    st.builds(lambda i, e: Completion(i, error=e), ids, st.text()),
    st.builds(Completion, ids),
    st.builds(CancelInvocation, ids),
    st.just(Ping()),
    st.builds(Close, st.none() | st.text(), st.booleans()),
    st.builds(Ack, st.integers(0, 2**53)),
    st.builds(Sequence, st.integers(0, 2**53)),
)


@given(messages)
def test_any_message_round_trips(message: HubMessage) -> None:
    record = hubjson.encode(message)
    assert record.endswith(RS)
    assert RS not in record[:-1]
    record.encode("utf-8")  # always encodable, even with lone surrogates inside
    assert hubjson.parse_message(record[:-1]) == message


FIELDS = ("invocationId", "target", "arguments", "streamIds", "headers", "item", "result", "error",
          "allowReconnect", "sequenceId")


@given(st.integers(-1, 10), st.dictionaries(st.sampled_from(FIELDS), json_values))
def test_parse_fails_only_with_protocol_error(kind: int, fields: dict[str, Any]) -> None:
    """Whatever the record, parsing gives a message that re-encodes to itself, an unknown type, or a ProtocolError."""
    try:
        message = hubjson.parse_message(json.dumps({"type": kind, **fields}))
    except ProtocolError as exc:
        assert exc.message
        return
    if isinstance(message, UnknownMessage):
        assert message.type == kind and not 1 <= kind <= 9
        return
    assert hubjson.parse_message(hubjson.encode(message)[:-1]) == message
