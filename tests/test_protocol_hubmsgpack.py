"""The MessagePack hub protocol: the spec's vectors, one table used both ways, the frame reader, errors, fuzzing."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol import hubjson, hubmsgpack
from gateway.protocol.errors import MessageTooLarge, ProtocolError
from gateway.protocol.hubmsgpack import RecordReader, decode_length, encode_length, frame, split
from gateway.protocol.hubprotocols import PROTOCOLS, HubProtocol, split_handshake
from gateway.protocol.messages import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HandshakeRequest,
    HubMessage,
    Invocation,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
    UnknownMessage,
)


def spec(text: str) -> bytes:
    """Bytes written as the spec writes them: ``0x96 0x01 ...``."""
    return bytes(int(token, 16) for token in text.split())


# --- the spec's examples, byte for byte ---------------------------------------------------------
# dotnet/aspnetcore src/SignalR/docs/specs/HubProtocol.md, "MessagePack (MsgPack) encoding"; each vector names
# its section. They are encoded to exactly these bytes and parsed back to the message.

SPEC_VECTORS: list[tuple[str, HubMessage, str]] = [
    ("Invocation Message Encoding, Example", Invocation("method", [42], "xyz"),
     "0x96 0x01 0x80 0xa3 0x78 0x79 0x7a 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90"),
    ("Invocation Message Encoding, Non-Blocking Example", Invocation("method", [42]),
     "0x96 0x01 0x80 0xc0 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90"),
    ("StreamInvocation Message Encoding", StreamInvocation("method", [42], "xyz"),
     "0x96 0x04 0x80 0xa3 0x78 0x79 0x7a 0xa6 0x6d 0x65 0x74 0x68 0x6f 0x64 0x91 0x2a 0x90"),
    ("StreamItem Message Encoding", StreamItem("xyz", 42), "0x94 0x02 0x80 0xa3 0x78 0x79 0x7a 0x2a"),
    ("Completion Message Encoding, Error Result", Completion("xyz", error="Error"),
     "0x95 0x03 0x80 0xa3 0x78 0x79 0x7a 0x01 0xa5 0x45 0x72 0x72 0x6f 0x72"),
    ("Completion Message Encoding, Void Result", Completion("xyz"), "0x94 0x03 0x80 0xa3 0x78 0x79 0x7a 0x02"),
    ("Completion Message Encoding, Non-Void Result", Completion("xyz", 42, None, True),
     "0x95 0x03 0x80 0xa3 0x78 0x79 0x7a 0x03 0x2a"),
    ("CancelInvocation Message Encoding", CancelInvocation("xyz"), "0x93 0x05 0x80 0xa3 0x78 0x79 0x7a"),
    ("Ping Message Encoding", Ping(), "0x91 0x06"),
    ("Close Message Encoding, Close message", Close("xyz"), "0x92 0x07 0xa3 0x78 0x79 0x7a"),
    ("Close Message Encoding, Close message that allows automatic client reconnects", Close("xyz", True),
     "0x93 0x07 0xa3 0x78 0x79 0x7a 0xc3"),
]

# "Ack Message Encoding" and "Sequence Message Encoding" write the id as a uint 8 ("any unsigned int size is
# fine"): they are parsed as given; the encoder writes the shortest form, a positive fixint.
SPEC_PARSE_ONLY: list[tuple[str, HubMessage, str, str]] = [
    ("Ack Message Encoding", Ack(36), "0x92 0x08 0xcc 0x24", "0x92 0x08 0x24"),
    ("Sequence Message Encoding", Sequence(19), "0x92 0x09 0xcc 0x13", "0x92 0x09 0x13"),
]


@pytest.mark.parametrize(("section", "message", "payload"), SPEC_VECTORS, ids=[v[0] for v in SPEC_VECTORS])
def test_spec_vector(section: str, message: HubMessage, payload: str) -> None:
    body = spec(payload)
    assert hubmsgpack.encode(message) == bytes([len(body)]) + body
    assert hubmsgpack.parse_message(body) == message


@pytest.mark.parametrize(("section", "message", "payload", "ours"), SPEC_PARSE_ONLY,
                         ids=[v[0] for v in SPEC_PARSE_ONLY])
def test_spec_vector_with_a_wider_integer(section: str, message: HubMessage, payload: str, ours: str) -> None:
    assert hubmsgpack.parse_message(spec(payload)) == message
    assert hubmsgpack.encode(message) == b"\x03" + spec(ours)


def test_spec_vector_headers() -> None:
    # "MessagePack Headers Encoding": an Invocation with headers 'x' = 'y' and 'z' = 'z'.
    body = spec("0x96 0x01 0x82 0xa1 0x78 0xa1 0x79 0xa1 0x7a 0xa1 0x7a 0xa3 0x78 0x79 0x7a 0xa6 0x6d 0x65 0x74 0x68 "
                "0x6f 0x64 0x91 0x2a 0x90")
    message = Invocation("method", [42], "xyz", headers={"x": "y", "z": "z"})
    assert hubmsgpack.encode(message) == bytes([len(body)]) + body
    parsed = hubmsgpack.parse_message(body)
    assert parsed == message
    assert isinstance(parsed, Invocation) and parsed.headers == {"x": "y", "z": "z"}


def test_spec_vector_binary_encoding() -> None:
    # "Binary encoding": the frames "Hello\nWorld" and 0x01 0x02 (the spec's bytes spell it "hello\nworld").
    stream = spec("0x0B 0x68 0x65 0x6C 0x6C 0x6F 0x0A 0x77 0x6F 0x72 0x6C 0x64 0x02 0x01 0x02")
    assert frame(b"hello\nworld") + frame(b"\x01\x02") == stream
    assert RecordReader().feed(stream) == [b"hello\nworld", b"\x01\x02"]


@pytest.mark.parametrize(("prefix", "value"), [("0x35", 53), ("0x80 0x29", 5248),
                                               ("0xFF 0xFF 0xFF 0xFF 0x07", 0x7FFFFFFF)])
def test_spec_vector_varint(prefix: str, value: int) -> None:
    # "VarInt": the two examples, and the largest length (2 GB), which takes the most bytes, 5.
    assert encode_length(value) == spec(prefix)
    assert decode_length(spec(prefix)) == (value, len(spec(prefix)))


def test_the_handshake_stays_json() -> None:
    # "Overview": the handshake is always JSON, ended by 0x1E, whatever the protocol.
    record = hubjson.encode_handshake_request("messagepack", 1)
    assert record == '{"protocol":"messagepack","version":1}\x1e'
    assert hubjson.parse_handshake_request(record[:-1]) == HandshakeRequest("messagepack", 1)


def test_a_binary_stream_starts_with_the_json_handshake() -> None:
    stream = hubjson.encode_handshake_request("messagepack", 1).encode() + hubmsgpack.PING + frame(b"x")
    assert split_handshake(stream[:10], 1024) is None
    text, rest = split_handshake(stream, 1024) or ("", b"")
    assert hubjson.parse_handshake_request(text) == HandshakeRequest("messagepack", 1)
    assert RecordReader().feed(rest) == [b"\x91\x06", b"x"]
    assert split_handshake(hubjson.HANDSHAKE_OK.encode(), 2) == ("{}", b"")


def test_a_handshake_without_its_separator_is_bounded() -> None:
    with pytest.raises(MessageTooLarge, match="message of 33 bytes exceeds the limit of 32 bytes"):
        split_handshake(b"{" * 33, 32)
    with pytest.raises(MessageTooLarge):
        split_handshake(b"{" * 33 + b"\x1e", 32)
    with pytest.raises(ProtocolError, match="not UTF-8"):
        split_handshake(b"\xff\x1e", 32)


# --- one table used both ways -----------------------------------------------------------------------

STAMP = datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=UTC)

CASES: list[tuple[HubMessage, list[Any]]] = [
    (Invocation("Echo", ["x", 2, None, 1.5, True]), [1, {}, None, "Echo", ["x", 2, None, 1.5, True], []]),
    (Invocation("Up", [], "7", ["s1", "s2"]), [1, {}, "7", "Up", [], ["s1", "s2"]]),
    (Invocation("Blob", [b"\x00\xff" * 3, {"nested": [b""]}], "8"), [1, {}, "8", "Blob", [b"\x00\xff" * 3,
                                                                                          {"nested": [b""]}], []]),
    (Invocation("At", [STAMP]), [1, {}, None, "At", [STAMP], []]),
    (StreamInvocation("Count", [3], "2"), [4, {}, "2", "Count", [3], []]),
    (StreamInvocation("Up", [], "3", ["s"]), [4, {}, "3", "Up", [], ["s"]]),
    (StreamItem("2", {"n": 1}), [2, {}, "2", {"n": 1}]),
    (StreamItem("2", None), [2, {}, "2", None]),
    (Completion("1", b"bin", None, True), [3, {}, "1", 3, b"bin"]),
    (Completion("1", None, None, True), [3, {}, "1", 3, None]),
    (Completion("1"), [3, {}, "1", 2]),
    (Completion("1", error="boom"), [3, {}, "1", 1, "boom"]),
    (CancelInvocation("4"), [5, {}, "4"]),
    (Ping(), [6]),
    (Close(), [7, None]),
    (Close(None, True), [7, None, True]),
    (Ack(2**40), [8, 2**40]),
    (Sequence(1), [9, 1]),
]


@pytest.mark.parametrize(("message", "array"), CASES)
def test_encode(message: HubMessage, array: list[Any]) -> None:
    assert hubmsgpack.encode(message) == frame(msgpack.packb(array, datetime=True))


@pytest.mark.parametrize(("message", "array"), CASES)
def test_parse(message: HubMessage, array: list[Any]) -> None:
    assert hubmsgpack.parse_message(msgpack.packb(array, datetime=True)) == message


def test_binary_arguments_and_timestamps_keep_their_types() -> None:
    record = hubmsgpack.encode(Invocation("m", [b"\x00\x01", STAMP.astimezone(timezone(timedelta(hours=-5)))]))
    assert b"\xc4\x02\x00\x01" in record  # bin 8, not a string
    assert b"\xd7\xff" in record  # timestamp 64: the extension type -1
    parsed = hubmsgpack.parse_message(record[1:])
    assert isinstance(parsed, Invocation)
    assert parsed.arguments == [b"\x00\x01", STAMP]
    assert parsed.arguments[1].tzinfo is UTC


@pytest.mark.parametrize("array", [
    [1, {}, None, "m", [1]],  # the official JS client leaves streamIds out when there are none
    [4, {}, "1", "m", [1]],
    [1, {}, None, "m", [1], [], "a later field"],
    [7, "e", False, None],
    [6, "extra"],
])
def test_optional_and_later_elements(array: list[Any]) -> None:
    message = hubmsgpack.parse_message(msgpack.packb(array))
    assert hubmsgpack.parse_message(hubmsgpack.encode(message)[1:]) == message


def test_headers_are_written_and_read_on_every_message_that_has_them() -> None:
    headers = {"trace": "abc"}
    for message in (Invocation("m", [], "1", headers=headers), StreamInvocation("m", [], "1", headers=headers),
                    StreamItem("1", 0, headers), Completion("1", headers=headers), CancelInvocation("1", headers)):
        array = msgpack.unpackb(hubmsgpack.encode(message)[1:])
        assert array[1] == headers
        assert hubmsgpack.parse_message(hubmsgpack.encode(message)[1:]).headers == headers  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", [0, 10, 42, -1, 2**63])
def test_unknown_message_types_parse_to_a_message_to_ignore(kind: int) -> None:
    assert hubmsgpack.parse_message(msgpack.packb([kind, {}, "anything"])) == UnknownMessage(kind)


def test_encode_helpers_match_encode() -> None:
    assert hubmsgpack.encode_invocation("progress", [{"seq": 1}]) == hubmsgpack.encode(
        Invocation("progress", [{"seq": 1}]))
    assert hubmsgpack.encode_completion("9", [1]) == hubmsgpack.encode(Completion("9", [1], None, True))
    assert hubmsgpack.PING == b"\x02\x91\x06"


def test_values_msgpack_cannot_carry() -> None:
    with pytest.raises(TypeError):
        hubmsgpack.encode(Completion("1", object(), None, True))
    with pytest.raises(ValueError, match="64-bit range"):
        hubmsgpack.encode_completion("1", 2**64)
    with pytest.raises(ValueError, match="tzinfo"):
        hubmsgpack.encode_invocation("m", [datetime(2024, 1, 1)])
    with pytest.raises(TypeError, match="not a hub message"):
        hubmsgpack.to_array("nope")  # type: ignore[arg-type]


def test_lone_surrogate_is_written_as_valid_utf8() -> None:
    message = hubjson.parse_message('{"type":1,"target":"a","arguments":["\\ud800é"]}')
    assert hubmsgpack.parse_message(hubmsgpack.encode(message)[1:]) == Invocation("a", ["?é"])


# --- malformed frames ---------------------------------------------------------------------------

MALFORMED: list[tuple[bytes, str]] = [
    (b"", "invalid MessagePack"),
    (b"\x96\x01", "invalid MessagePack"),  # 6 elements announced, 1 sent
    (b"\x91\x06\x00", "invalid MessagePack: .*extra data"),
    (b"\xc1", "invalid MessagePack"),  # the one byte MessagePack never uses
    (b"\x91\xa1\xff", "invalid MessagePack"),  # a string that is not UTF-8
    (b"\x92\x01\x81\x01\x02", "invalid MessagePack: .*int.* is not allowed for map key"),
    (b"\x92\x01\xd4\x05\x00", "extension type 5 is not supported"),
    (b"\x92\x01\xd6\xff\x00", "invalid MessagePack"),  # a truncated timestamp
    (b"\x92\x01\xc7\x0c\xff" + b"\x00" * 4 + b"\x7f" + b"\xff" * 7, "invalid MessagePack"),  # a year out of range
    (b"\x91" * 5000 + b"\x06", "nested too deeply"),
    (msgpack.packb({"type": 1}), "must be a non-empty MessagePack array"),
    (msgpack.packb(6), "must be a non-empty MessagePack array"),
    (msgpack.packb([]), "must be a non-empty MessagePack array"),
    (msgpack.packb(["1"]), r"element 0 \(type\) has the wrong type"),
    (msgpack.packb([True]), r"element 0 \(type\) has the wrong type"),
    (msgpack.packb([1.0]), r"element 0 \(type\) has the wrong type"),
    (msgpack.packb([1, {}, None, "m"]), "a message of type 1 needs 5 elements, got 4"),
    (msgpack.packb([1, [], None, "m", []]), r"element 1 \(headers\) has the wrong type"),
    (msgpack.packb([1, {"a": 1}, None, "m", []]), "header keys and values must be strings"),
    (msgpack.packb([1, {b"a": "b"}, None, "m", []]), "header keys and values must be strings"),
    (msgpack.packb([1, {}, 5, "m", []]), r"element 2 \(invocationId\) has the wrong type"),
    (msgpack.packb([1, {}, None, b"m", []]), r"element 3 \(target\) has the wrong type"),
    (msgpack.packb([1, {}, None, "m", {}]), r"element 4 \(arguments\) has the wrong type"),
    (msgpack.packb([1, {}, None, "m", [], "s"]), r"element 5 \(streamIds\) has the wrong type"),
    (msgpack.packb([1, {}, None, "m", [], [1]]), "streamIds must be strings"),
    (msgpack.packb([4, {}, None, "m", []]), r"element 2 \(invocationId\) has the wrong type"),
    (msgpack.packb([2, {}, "1"]), "a message of type 2 needs 4 elements"),
    (msgpack.packb([3, {}, "1"]), "a message of type 3 needs 4 elements"),
    (msgpack.packb([3, {}, "1", 4]), "invalid completion result kind 4"),
    (msgpack.packb([3, {}, "1", "3", 1]), r"element 3 \(resultKind\) has the wrong type"),
    (msgpack.packb([3, {}, "1", 1]), "a completion of result kind 1 needs 5 elements, got 4"),
    (msgpack.packb([3, {}, "1", 3]), "a completion of result kind 3 needs 5 elements, got 4"),
    (msgpack.packb([3, {}, "1", 1, 5]), r"element 4 \(error\) has the wrong type"),
    (msgpack.packb([5, {}]), "a message of type 5 needs 3 elements"),
    (msgpack.packb([7]), "a message of type 7 needs 2 elements"),
    (msgpack.packb([7, 1]), r"element 1 \(error\) has the wrong type"),
    (msgpack.packb([7, None, 1]), r"element 2 \(allowReconnect\) has the wrong type"),
    (msgpack.packb([8]), "a message of type 8 needs 2 elements"),
    (msgpack.packb([8, "1"]), r"element 1 \(sequenceId\) has the wrong type"),
    (msgpack.packb([9, False]), r"element 1 \(sequenceId\) has the wrong type"),
    (msgpack.packb([9, 1.5]), r"element 1 \(sequenceId\) has the wrong type"),
]


@pytest.mark.parametrize(("record", "error"), MALFORMED, ids=[r[:12].hex() for r, _ in MALFORMED])
def test_malformed_records(record: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error) as info:
        hubmsgpack.parse_message(record)
    assert info.value.status == 400
    assert info.value.ws_code == 1002


# --- the frame reader ---------------------------------------------------------------------------

MAX = 0x7FFFFFFF
RECORDS = [msgpack.packb(array, datetime=True) for _, array in CASES] + [b"", b"x" * 300]
STREAM = b"".join(frame(r) for r in RECORDS)


def test_reader_whole_input() -> None:
    reader = RecordReader()
    assert reader.feed(STREAM) == RECORDS
    assert not reader.pending and not reader.backlog


def test_reader_one_byte_at_a_time() -> None:
    reader = RecordReader()
    out: list[bytes] = []
    for index in range(len(STREAM)):
        out += reader.feed(STREAM[index:index + 1])
    assert out == RECORDS
    assert not reader.pending


def test_reader_trailing_data() -> None:
    reader = RecordReader()
    assert reader.feed(STREAM + b"\x80") == RECORDS  # half of a two-byte prefix
    assert reader.pending and reader.buffered == b"\x80"
    assert reader.feed(b"\x01" + b"y" * 127) == []
    assert reader.feed(b"y" + hubmsgpack.PING) == [b"y" * 128, b"\x91\x06"]
    assert not reader.pending


@given(st.lists(st.binary(max_size=300), max_size=8), st.data())
def test_reader_any_split(records: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(r) for r in records)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    reader = RecordReader(max_size=1 << 20)
    out: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out += reader.feed(stream[start:cut])
        start = cut
    assert out == records
    assert not reader.pending


@pytest.mark.parametrize("limit", [1, 2, 3, 7, len(RECORDS), len(RECORDS) + 1])
def test_reader_limited_feed_returns_batches_in_order(limit: int) -> None:
    reader = RecordReader()
    batches = [reader.feed(STREAM + b"\x05\x91", limit)]
    while reader.backlog:
        assert reader.pending
        batches.append(reader.feed(b"", limit))
    assert all(0 < len(batch) <= limit for batch in batches)
    assert [r for batch in batches for r in batch] == RECORDS
    assert reader.buffered == b"\x05\x91"
    assert reader.feed(b"\x06xyz", limit) == [b"\x91\x06xyz"]
    assert not reader.pending and not reader.backlog


def test_reader_data_fed_during_a_backlog_follows_it() -> None:
    reader = RecordReader()
    assert reader.feed(frame(b"a") + frame(b"b") + b"\x01", 1) == [b"a"]
    assert reader.feed(b"c" + frame(b"d"), 2) == [b"b", b"c"]
    assert reader.feed(b"", 2) == [b"d"]
    assert not reader.backlog and not reader.pending


def test_reader_limit_is_inclusive() -> None:
    reader = RecordReader(max_size=10)
    assert reader.feed(frame(b"x" * 10)) == [b"x" * 10]
    with pytest.raises(MessageTooLarge, match="message of 11 bytes exceeds the limit of 10 bytes") as info:
        reader.feed(frame(b"x" * 11))
    assert info.value.status == 413
    assert info.value.ws_code == 1009


def test_reader_refuses_a_declared_length_before_its_bytes_arrive() -> None:
    reader = RecordReader(max_size=32 * 1024)
    assert reader.feed(b"\x80") == []  # the prefix is not complete yet
    with pytest.raises(MessageTooLarge, match="message of 2097152 bytes"):
        reader.feed(b"\x80\x80\x01")  # 2 MB declared, not one byte of it sent
    with pytest.raises(MessageTooLarge, match=f"message of {0x7FFFFFFF} bytes"):
        RecordReader().feed(encode_length(0x7FFFFFFF))


def test_reader_limited_feed_checks_each_record_it_reaches() -> None:
    reader = RecordReader(max_size=10)
    assert reader.feed(frame(b"x") + encode_length(11), 1) == [b"x"]
    with pytest.raises(MessageTooLarge, match="message of 11 bytes"):
        reader.feed(b"", 1)


@pytest.mark.parametrize("prefix", [
    b"\x80\x80\x80\x80\x80",  # a sixth byte announced
    b"\xff\xff\xff\xff\x7f",  # five bytes, but over 2 GB
    b"\x80\x80\x80\x80\x08",  # 2**31: one over the largest length
])
def test_reader_refuses_a_wrong_length_prefix(prefix: bytes) -> None:
    with pytest.raises(ProtocolError, match="invalid length prefix: more than 5 bytes or over 2 GB") as info:
        RecordReader(max_size=MAX).feed(prefix)
    assert info.value.status == 400
    with pytest.raises(ProtocolError, match="invalid length prefix"):
        decode_length(prefix)


def test_a_prefix_of_five_bytes_is_waited_for_byte_by_byte() -> None:
    reader = RecordReader(max_size=MAX)
    for byte in b"\xff\xff\xff\xff":
        assert reader.feed(bytes([byte])) == [] and reader.pending
    assert reader.feed(b"\x07") == []
    assert reader.pending


def test_split_requires_whole_frames() -> None:
    assert split(STREAM, 1 << 20) == RECORDS
    with pytest.raises(ProtocolError, match="truncated length prefix"):
        split(frame(b"x") + b"\x80", 1 << 20)
    with pytest.raises(ProtocolError, match="truncated frame: 5 bytes declared, 2 sent"):
        split(frame(b"x") + b"\x05ab", 1 << 20)


def test_encode_length_refuses_what_no_prefix_can_say() -> None:
    with pytest.raises(ValueError, match="cannot be framed"):
        encode_length(MAX + 1)
    with pytest.raises(ValueError, match="cannot be framed"):
        encode_length(-1)


# --- fuzzing ------------------------------------------------------------------------------------

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text()
    | st.binary() | st.datetimes(timezones=st.just(UTC)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ids = st.text(min_size=1, max_size=8)
stream_ids = st.none() | st.lists(st.text(), min_size=1, max_size=3)
headers = st.none() | st.dictionaries(st.text(), st.text(), min_size=1, max_size=3)
messages: st.SearchStrategy[HubMessage] = st.one_of(
    st.builds(Invocation, st.text(), st.lists(values, max_size=4), st.none() | ids, stream_ids, headers),
    st.builds(StreamInvocation, st.text(), st.lists(values, max_size=4), ids, stream_ids, headers),
    st.builds(StreamItem, ids, values, headers),
    st.builds(lambda i, r, h: Completion(i, r, None, True, h), ids, values, headers),
    st.builds(lambda i, e, h: Completion(i, error=e, headers=h), ids, st.text(), headers),
    st.builds(Completion, ids, headers=headers),
    st.builds(CancelInvocation, ids, headers),
    st.just(Ping()),
    st.builds(Close, st.none() | st.text(), st.booleans()),
    st.builds(Ack, st.integers(0, 2**64 - 1)),
    st.builds(Sequence, st.integers(0, 2**64 - 1)),
)


@given(messages)
def test_any_message_round_trips(message: HubMessage) -> None:
    record = hubmsgpack.encode(message)
    [body] = split(record, 1 << 20)
    parsed = hubmsgpack.parse_message(body)
    assert parsed == message
    assert getattr(parsed, "headers", None) == getattr(message, "headers", None)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    try:
        message = hubmsgpack.parse_message(data)
    except ProtocolError as exc:
        assert exc.message
        return
    if not isinstance(message, UnknownMessage):  # what was read can be written and read again
        assert type(hubmsgpack.parse_message(split(hubmsgpack.encode(message), 1 << 30)[0])) is type(message)


@given(st.binary(max_size=200), st.integers(0, 3))
def test_arbitrary_bytes_through_the_reader_raise_only_protocol_error(data: bytes, limit: int) -> None:
    reader = RecordReader(max_size=64)
    try:
        records = reader.feed(data, limit)
        while reader.backlog:
            records += reader.feed(b"", limit)
    except ProtocolError as exc:
        assert exc.message
        return
    for record in records:
        with contextlib.suppress(ProtocolError):
            hubmsgpack.parse_message(record)


@given(st.integers(-1, 10), st.lists(values, max_size=7))
def test_any_array_parses_to_a_message_that_re_encodes_or_raises_protocol_error(kind: int, rest: list[Any]) -> None:
    try:
        message = hubmsgpack.parse_message(msgpack.packb([kind, *rest], datetime=True))
    except ProtocolError as exc:
        assert exc.message
        return
    if isinstance(message, UnknownMessage):
        assert message.type == kind and not 1 <= kind <= 9
        return
    assert hubmsgpack.parse_message(split(hubmsgpack.encode(message), 1 << 30)[0]) == message


# --- both protocols behind one interface ----------------------------------------------------------

INTERFACE_MESSAGES: list[HubMessage] = [  # values both JSON and MessagePack carry
    Invocation("Echo", ["x", 2, None, 1.5, True], "1"), Invocation("Up", [], "7", ["s1", "s2"]),
    StreamInvocation("Count", [3], "2"), StreamItem("2", {"n": [1]}), Completion("1", "x", None, True),
    Completion("1"), Completion("1", error="boom"), CancelInvocation("4"), Ping(), Close("bye", True), Ack(3),
    Sequence(4),
]


@pytest.mark.parametrize("name", ["json", "messagepack"])
def test_both_protocols_round_trip_through_the_interface(name: str) -> None:
    protocol: HubProtocol[Any] = PROTOCOLS[name]
    assert protocol.name == name and protocol.version == 1
    assert protocol.transfer_format == ("Text" if name == "json" else "Binary")
    stream = protocol.encode(Ping())[:0].join(protocol.encode(m) for m in INTERFACE_MESSAGES)
    reader = protocol.reader(1 << 20)
    records = reader.feed(stream, 3)
    while reader.backlog:
        records += reader.feed(stream[:0], 3)
    assert [protocol.parse(r) for r in records] == INTERFACE_MESSAGES
    assert not reader.pending
    assert protocol.encode_invocation("m", [1]) == protocol.encode(Invocation("m", [1]))
    assert protocol.encode_completion("1", "r") == protocol.encode(Completion("1", "r", None, True))


@pytest.mark.parametrize("name", ["json", "messagepack"])
def test_the_interface_reader_enforces_its_limit(name: str) -> None:
    protocol: HubProtocol[Any] = PROTOCOLS[name]
    with pytest.raises(MessageTooLarge):
        protocol.reader(16).feed(protocol.encode(Invocation("m", ["x" * 32])))
