"""The JSON hub protocol: records terminated by 0x1E, the handshake, message types 1-9."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from .errors import MessageTooLarge, ProtocolError
from .messages import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HandshakeRequest,
    HandshakeResponse,
    HubMessage,
    Invocation,
    MessageType,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
    UnknownMessage,
)

RS = "\x1e"
HANDSHAKE_OK = "{}" + RS
PING = '{"type":6}' + RS

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_dumps_ascii = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


def dumps(value: Any) -> str:
    """Compact JSON, as every record is written; always encodable as UTF-8.

    A string holding a lone surrogate (``"\\ud800"`` in the JSON a client sent) is written escaped,
    so that echoing it back cannot fail when the I/O layer encodes the record.
    """
    text = _dumps(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _dumps_ascii(value)
    return text


_SHORT = 64 * 1024
"""A text up to this long is counted before it is split: one ``split`` when it holds no more records than a batch."""


class RecordReader:
    """Splits a text stream into records; partial records wait for more input.

    ``max_size`` bounds one record, in bytes of its UTF-8 text. The check is free for ASCII and
    for short records (a code point takes at most four bytes); only a long non-ASCII record is
    encoded to be measured.

    ``feed(text, limit)`` returns at most ``limit`` records and keeps the rest of the text, unsplit,
    for the next ``feed("", limit)``: one large message of many small records then costs its own
    text plus one batch, not a list of every record at once.
    """

    __slots__ = ("_buffer", "_start", "max_size")

    def __init__(self, max_size: int = 32 * 1024) -> None:
        self._buffer = ""
        self._start = 0  # where the unread text begins in ``_buffer`` after a limited feed
        self.max_size = max_size

    def feed(self, text: str, limit: int = 0) -> list[str]:
        """Add ``text``; return the complete records, at most ``limit`` of them (0: all)."""
        if self._start:  # complete records are waiting: they come first
            data = self._buffer[self._start:] + text if text else self._buffer
            return self._take(data, 0 if text else self._start, limit or len(data))
        data = self._buffer + text if self._buffer else text
        if limit and len(data) > limit and (len(data) > _SHORT or data.count(RS) > limit):
            return self._take(data, 0, limit)
        *records, rest = data.split(RS)
        for record in records:
            self._check(record)
        self._check(rest)
        self._buffer = rest
        return records

    def _take(self, data: str, start: int, limit: int) -> list[str]:
        """Up to ``limit`` records of ``data`` from ``start``; what follows them stays buffered."""
        records, start = self._split(data, start, limit)
        if len(records) == limit and data.find(RS, start) >= 0:
            self._buffer, self._start = data, start
            return records
        rest = data[start:]
        self._check(rest)
        self._buffer, self._start = rest, 0
        return records

    def _split(self, data: str, start: int, limit: int) -> tuple[list[str], int]:
        """Up to ``limit`` records of ``data`` from ``start``, and where the text after them begins."""
        records: list[str] = []
        find = data.find
        while len(records) < limit:
            end = find(RS, start)
            if end < 0:
                break
            record = data[start:end]
            self._check(record)
            records.append(record)
            start = end + 1
        return records, start

    @property
    def backlog(self) -> bool:
        """True when complete records wait for the next ``feed`` (a limited feed stopped at its limit)."""
        return bool(self._start)

    @property
    def buffered(self) -> str:
        """The text not yet returned as records."""
        return self._buffer[self._start:]

    @property
    def pending(self) -> bool:
        """True when a partial record is waiting for the rest of its bytes."""
        return len(self._buffer) > self._start

    def _check(self, record: str) -> None:
        length = len(record)
        if length > self.max_size or (length * 4 > self.max_size and not record.isascii()):
            size = len(record.encode("utf-8", "surrogatepass"))
            if size > self.max_size:
                raise MessageTooLarge(size, self.max_size)


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"invalid JSON: {name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ProtocolError(f"invalid JSON: the number {text[:32]} is out of range")
    return value


_loads = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float).decode
"""One decoder for every record: ``json.loads`` with hooks builds a decoder per call."""


def _load(record: str) -> dict[str, Any]:
    # NaN, Infinity and 1e400 are refused here: the encoder (allow_nan=False) could not echo them back.
    try:
        value = _loads(record)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc.msg} at position {exc.pos}") from None
    except (ValueError, RecursionError):
        raise ProtocolError("invalid JSON: too deeply nested or a number too long") from None
    if not isinstance(value, dict):
        raise ProtocolError("a record must be a JSON object")
    return value


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
    if key not in obj:
        if required:
            raise ProtocolError(f"missing required property '{key}'")
        return None
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"property '{key}' has the wrong type")
    return value


def parse_handshake_request(record: str) -> HandshakeRequest:
    obj = _load(record)
    protocol = _get(obj, "protocol", str)
    version = _get(obj, "version", int)
    return HandshakeRequest(protocol, version)


def parse_handshake_response(record: str) -> HandshakeResponse:
    obj = _load(record)
    return HandshakeResponse(_get(obj, "error", str, required=False))


def encode_handshake_request(protocol: str = "json", version: int = 1) -> str:
    return dumps({"protocol": protocol, "version": version}) + RS


def encode_handshake_response(error: str | None = None) -> str:
    return HANDSHAKE_OK if error is None else dumps({"error": error}) + RS


def _headers(obj: dict[str, Any]) -> dict[str, str] | None:
    headers: dict[str, str] | None = _get(obj, "headers", dict, required=False)
    if headers is not None and not all(isinstance(v, str) for v in headers.values()):
        raise ProtocolError("header values must be strings")
    return headers


def _stream_ids(obj: dict[str, Any]) -> list[str] | None:
    ids: list[str] | None = _get(obj, "streamIds", list, required=False)
    if ids is not None and not all(isinstance(i, str) for i in ids):
        raise ProtocolError("streamIds must be strings")
    return ids


def _invocation(obj: dict[str, Any]) -> Invocation:
    return Invocation(
        _get(obj, "target", str), _get(obj, "arguments", list),
        _get(obj, "invocationId", str, required=False), _stream_ids(obj), _headers(obj),
    )


def _stream_invocation(obj: dict[str, Any]) -> StreamInvocation:
    return StreamInvocation(
        _get(obj, "target", str), _get(obj, "arguments", list),
        _get(obj, "invocationId", str), _stream_ids(obj), _headers(obj),
    )


def _stream_item(obj: dict[str, Any]) -> StreamItem:
    if "item" not in obj:
        raise ProtocolError("missing required property 'item'")
    return StreamItem(_get(obj, "invocationId", str), obj["item"], _headers(obj))


def _completion(obj: dict[str, Any]) -> Completion:
    error = _get(obj, "error", str, required=False)
    if error is not None and "result" in obj:
        raise ProtocolError("a completion cannot carry both a result and an error")
    return Completion(_get(obj, "invocationId", str), obj.get("result"), error, "result" in obj, _headers(obj))


def _close(obj: dict[str, Any]) -> Close:
    return Close(_get(obj, "error", str, required=False), bool(_get(obj, "allowReconnect", bool, required=False)))


_PARSERS: dict[int, Callable[[dict[str, Any]], HubMessage]] = {
    MessageType.INVOCATION: _invocation,
    MessageType.STREAM_INVOCATION: _stream_invocation,
    MessageType.STREAM_ITEM: _stream_item,
    MessageType.COMPLETION: _completion,
    MessageType.CANCEL_INVOCATION: lambda o: CancelInvocation(_get(o, "invocationId", str), _headers(o)),
    MessageType.PING: lambda o: Ping(),
    MessageType.CLOSE: _close,
    MessageType.ACK: lambda o: Ack(_get(o, "sequenceId", int)),
    MessageType.SEQUENCE: lambda o: Sequence(_get(o, "sequenceId", int)),
}


def parse_message(record: str) -> HubMessage:
    """Parse one record (without its 0x1E) into a message, or raise ProtocolError.

    A record whose ``type`` is an integer this protocol does not define becomes an UnknownMessage, for the
    receiver to ignore: SignalR's own protocol libraries do the same, so that later versions can add types.
    """
    obj = _load(record)
    kind = _get(obj, "type", int)
    parser = _PARSERS.get(kind)
    if parser is None:
        return UnknownMessage(kind)
    return parser(obj)


def _with_headers(obj: dict[str, Any], headers: dict[str, str] | None) -> dict[str, Any]:
    if headers:
        obj["headers"] = headers
    return obj


def _invocation_json(message: Invocation | StreamInvocation) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": 1 if isinstance(message, Invocation) else 4}
    if message.invocation_id is not None:
        obj["invocationId"] = message.invocation_id
    obj["target"] = message.target
    obj["arguments"] = message.arguments
    if message.stream_ids:
        obj["streamIds"] = message.stream_ids
    return _with_headers(obj, message.headers)


def to_json(message: HubMessage) -> dict[str, Any]:
    """The JSON object of a message (the inverse of parse_message)."""
    match message:
        case Invocation() | StreamInvocation():
            return _invocation_json(message)
        case StreamItem(invocation_id, item, headers):
            return _with_headers({"type": 2, "invocationId": invocation_id, "item": item}, headers)
        case Completion(invocation_id, result, error, has_result, headers):
            obj: dict[str, Any] = {"type": 3, "invocationId": invocation_id}
            if error is not None:
                obj["error"] = error
            elif has_result:
                obj["result"] = result
            return _with_headers(obj, headers)
        case CancelInvocation(invocation_id, headers):
            return _with_headers({"type": 5, "invocationId": invocation_id}, headers)
        case Ping():
            return {"type": 6}
        case Close(error, allow_reconnect):
            obj = {"type": 7}
            if error is not None:
                obj["error"] = error
            if allow_reconnect:
                obj["allowReconnect"] = True
            return obj
        case Ack(sequence_id):
            return {"type": 8, "sequenceId": sequence_id}
        case Sequence(sequence_id):
            return {"type": 9, "sequenceId": sequence_id}
    raise TypeError(f"not a hub message: {message!r}")


def encode(message: HubMessage) -> str:
    """One record, 0x1E included."""
    return dumps(to_json(message)) + RS


def encode_invocation(target: str, arguments: list[Any]) -> str:
    """The record of a server-to-client call; encoded once per broadcast, whatever the recipients."""
    return dumps({"type": 1, "target": target, "arguments": arguments}) + RS


def encode_completion(invocation_id: str, result: Any) -> str:
    """The record of a successful invocation's result: the hot path of every round trip."""
    return dumps({"type": 3, "invocationId": invocation_id, "result": result}) + RS
