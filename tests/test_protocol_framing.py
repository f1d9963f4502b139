"""Per-transport framing: SSE events and ForeverFrame chunks, written and parsed back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol import framing
from gateway.protocol.errors import MessageTooLarge, ProtocolError
from gateway.protocol.framing import ForeverFrameParser, SSEParser
from gateway.protocol.hubjson import PING, RS

T = TypeVar("T")


def feed_whole(feed: Callable[[bytes], list[T]], data: bytes) -> list[T]:
    return feed(data)


def feed_bytewise(feed: Callable[[bytes], list[T]], data: bytes) -> list[T]:
    out: list[T] = []
    for i in range(len(data)):
        out += feed(data[i:i + 1])
    return out


def feed_at(feed: Callable[[bytes], list[T]], data: bytes, cuts: Sequence[int]) -> list[T]:
    out: list[T] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out += feed(data[start:cut])
        start = cut
    return out


FEEDERS = [feed_whole, feed_bytewise]

# --- Server-Sent Events ---------------------------------------------------------------------------

# (payload, event bytes, payload as the parser gives it back)
SSE_CASES: list[tuple[str, bytes, str]] = [
    ("abc", b"data: abc\n\n", "abc"),
    ('{"type":6}' + RS, b'data: {"type":6}\x1e\n\n', '{"type":6}' + RS),
    ("", b"data: \n\n", ""),
    ("a\nb", b"data: a\ndata: b\n\n", "a\nb"),
    ("a\r\nb", b"data: a\ndata: b\n\n", "a\nb"),
    ("a\rb\n", b"data: a\ndata: b\ndata: \n\n", "a\nb\n"),
    (" lead", b"data:  lead\n\n", " lead"),
    ("é\u2028", "data: é\u2028\n\n".encode(), "é\u2028"),
    (": not a comment", b"data: : not a comment\n\n", ": not a comment"),
]


@pytest.mark.parametrize(("payload", "event", "parsed"), SSE_CASES)
def test_sse_event(payload: str, event: bytes, parsed: str) -> None:
    assert framing.sse_event(payload) == event
    assert SSEParser().feed(event) == [parsed]


SSE_STREAM = framing.SSE_PRELUDE + b"".join(event for _, event, _ in SSE_CASES) + framing.SSE_COMMENT
SSE_PAYLOADS = [parsed for _, _, parsed in SSE_CASES]


@pytest.mark.parametrize("feeder", FEEDERS)
def test_sse_stream(feeder: Callable[..., list[str]]) -> None:
    assert feeder(SSEParser().feed, SSE_STREAM) == SSE_PAYLOADS


def test_sse_trailing_data_waits() -> None:
    parser = SSEParser()
    assert parser.feed(SSE_STREAM + b"data: par") == SSE_PAYLOADS
    assert parser.feed(b"tial\n") == []
    assert parser.feed(b"\n") == ["partial"]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("feeder", FEEDERS)
def test_sse_every_line_ending(eol: bytes, feeder: Callable[..., list[str]]) -> None:
    stream = b":" + eol + eol + b"data: a" + eol + b"data:b" + eol + eol + b"data" + eol + eol
    assert feeder(SSEParser().feed, stream) == ["a\nb", ""]


def test_sse_cr_lf_split_across_reads() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\ndata: b\r") == []
    assert parser.feed(b"\n\r\n") == ["a\nb"]


def test_sse_other_fields_and_comments_are_skipped() -> None:
    stream = b": hello\nevent: x\nid: 4\nretry: 10\ndata: a\nfoo\n\n:\n\nevent: only\n\n"
    assert SSEParser().feed(stream) == ["a"]


def test_sse_event_too_large() -> None:
    parser = SSEParser(max_event=100)
    parser.feed(b"data: " + b"x" * 60 + b"\n")
    with pytest.raises(MessageTooLarge, match="exceeds the limit of 100 bytes"):
        parser.feed(b"data: " + b"x" * 60)


def test_sse_line_without_end_too_large() -> None:
    with pytest.raises(MessageTooLarge):
        SSEParser(max_event=10).feed(b"data: " + b"x" * 20)


@given(st.lists(st.text(), max_size=6), st.data())
def test_sse_any_payload_any_split(payloads: list[str], data: st.DataObject) -> None:
    stream = framing.SSE_PRELUDE + b"".join(framing.sse_event(p) for p in payloads)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    expected = [p.replace("\r\n", "\n").replace("\r", "\n") for p in payloads]
    assert feed_at(SSEParser().feed, stream, cuts) == expected


# --- ForeverFrame -------------------------------------------------------------------------------

NASTY = [
    "</script><script>alert(1)</script>",
    "<!-- x -->",
    "</SCRIPT >",
    "a\u2028b\u2029c",
    '"quoted" \'single\'',
    "back\\slash\\",
    "rec" + RS + "ord" + RS,
    "<>&",
    "\x00\x07\n\r\t",
    "g(null)",
    ")</script>",
    "é😀",
    "",
]
PRELUDE = framing.ff_prelude("https://app.example", "frame-1")


def chunk_payload(chunk: bytes) -> bytes:
    match = re.fullmatch(rb"<script>g\((.*)\)</script>\n", chunk, re.S)
    assert match is not None, chunk
    return match.group(1)


def assert_safe(chunk: bytes) -> None:
    """The payload's bytes can neither end the script nor open markup nor break a JS line."""
    inner = chunk_payload(chunk)
    for bad in (b"</", b"<!--", b"<", b">", "\u2028".encode(), "\u2029".encode()):
        assert bad not in inner
    assert chunk.count(b"</") == 1


@pytest.mark.parametrize("payload", NASTY)
def test_ff_chunk_is_safe_and_round_trips(payload: str) -> None:
    chunk = framing.ff_chunk(payload)
    assert_safe(chunk)
    assert json.loads(chunk_payload(chunk)) == payload
    assert ForeverFrameParser().feed(PRELUDE + chunk) == [payload]


def test_ff_script_string_escapes() -> None:
    assert framing.script_string("</script><!--\u2028\u2029&") == (
        '"\\u003c/script\\u003e\\u003c!--\\u2028\\u2029\\u0026"'
    )
    assert framing.script_string(None) == "null"
    assert framing.script_string('"\\' + RS) == '"\\"\\\\\\u001e"'


@given(st.text())
def test_ff_any_payload_is_safe(payload: str) -> None:
    chunk = framing.ff_chunk(payload)
    assert_safe(chunk)
    assert ForeverFrameParser().feed(PRELUDE + chunk) == [payload]


def test_ff_prelude() -> None:
    text = PRELUDE.decode()
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in text
    assert 'parent.postMessage({gw:"frame-1",d:d},"https://app.example")' in text
    assert len(PRELUDE) > framing.FF_PADDING
    assert text.endswith("-->\n")


@pytest.mark.parametrize("origin", [
    "https://x</script><script>alert(1)//", "*", "null", "", "https://app.example/", "https://app.example/path",
    "javascript:alert(1)", "file://", "https://user@app.example", "https://app.example:0", "https://app.example:65536",
    "https://app.example:", "ftp://app.example", "https://*.example", "https://app..example", " https://app.example",
])
def test_ff_prelude_refuses_anything_but_one_origin(origin: str) -> None:
    assert not framing.valid_target_origin(origin)
    with pytest.raises(ProtocolError, match=r"scheme://host\[:port\]"):
        framing.ff_prelude(origin, "f")


@pytest.mark.parametrize("origin", [
    "https://app.example", "http://127.0.0.1:8000", "http://localhost:3000", "https://[::1]:8443", "http://[::1]",
    "https://a-b.c-d.example:65535", "http://xn--bcher-kva.example",
])
def test_ff_prelude_takes_a_real_origin(origin: str) -> None:
    assert framing.valid_target_origin(origin)
    assert f'd:d}},"{origin}")' in framing.ff_prelude(origin, "f").decode()


@pytest.mark.parametrize("frame", ["", "a" * 65, "a b", "a/b", "é", '"x"', "a<b"])
def test_ff_prelude_refuses_bad_frame_ids(frame: str) -> None:
    assert not framing.valid_frame_id(frame)
    with pytest.raises(ProtocolError, match=r"frame id must match"):
        framing.ff_prelude("https://app.example", frame)


@pytest.mark.parametrize("frame", ["a", "A-z_0", "x" * 64])
def test_valid_frame_ids(frame: str) -> None:
    assert framing.valid_frame_id(frame)


def test_ff_end() -> None:
    assert framing.FF_END == b"<script>g(null)</script>\n"


FF_STREAM = PRELUDE + b"".join(framing.ff_chunk(p) for p in NASTY) + framing.ff_chunk(PING) + framing.FF_END
FF_PAYLOADS: list[str | None] = [*NASTY, PING, None]


@pytest.mark.parametrize("feeder", FEEDERS)
def test_ff_stream(feeder: Callable[..., list[str | None]]) -> None:
    assert feeder(ForeverFrameParser().feed, FF_STREAM) == FF_PAYLOADS


def test_ff_trailing_data_waits() -> None:
    parser = ForeverFrameParser()
    chunk = framing.ff_chunk("next")
    assert parser.feed(PRELUDE + framing.ff_chunk("a") + chunk[:15]) == ["a"]
    assert parser.feed(chunk[15:-1]) == ["next"]
    assert parser.feed(b"\n") == []
    assert parser.feed(b"") == []
    assert parser.feed(framing.FF_END + b"</body></html>") == [None]
    assert parser.feed(b"anything after the end") == []


def test_ff_prelude_split_anywhere() -> None:
    parser = ForeverFrameParser()
    assert parser.feed(PRELUDE[:-2]) == []
    assert parser.feed(PRELUDE[-2:] + framing.ff_chunk("x")) == ["x"]


@given(st.lists(st.text(), max_size=5), st.data())
def test_ff_any_split(payloads: list[str], data: st.DataObject) -> None:
    stream = PRELUDE + b"".join(framing.ff_chunk(p) for p in payloads)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    assert feed_at(ForeverFrameParser().feed, stream, cuts) == payloads


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<p>hello</p>", "unexpected bytes in a ForeverFrame stream"),
        (b"<script>alert(1)</script>", "unexpected bytes in a ForeverFrame stream"),
        (b"<script>g(5)</script>", "a ForeverFrame chunk is not a JSON string"),
        (b'<script>g(["x"])</script>', "a ForeverFrame chunk is not a JSON string"),
        (b"<script>g('x')</script>", "a ForeverFrame chunk is not a JSON string"),
        (b'<script>g("x")</script>garbage', "unexpected bytes in a ForeverFrame stream"),
    ],
)
def test_ff_malformed(body: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        ForeverFrameParser().feed(PRELUDE + body)


def test_ff_chunk_too_large() -> None:
    parser = ForeverFrameParser(max_chunk=100)
    parser.feed(PRELUDE)
    with pytest.raises(MessageTooLarge):
        parser.feed(b'<script>g("' + b"x" * 200)


def test_ff_prelude_too_large() -> None:
    with pytest.raises(MessageTooLarge):
        ForeverFrameParser(max_chunk=100).feed(b"<html>" + b" " * 200)
