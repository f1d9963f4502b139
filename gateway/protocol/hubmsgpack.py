"""The MessagePack hub protocol: VarInt-prefixed frames, one MessagePack array per message, types 1-9.

The handshake stays JSON text ended by 0x1E even on this protocol (``hubjson`` reads and writes it).
Values map as the ``msgpack`` library maps them: ``bytes`` is ``bin``, a timezone-aware ``datetime`` is the
timestamp extension (type -1, read back in UTC), and map keys must be strings or ``bytes``, as in JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from .errors import MessageTooLarge, ProtocolError
from .messages import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HubMessage,
    Invocation,
    MessageType,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
    UnknownMessage,
)

MAX_LENGTH = 0x7FFF_FFFF
"""The largest frame body the spec allows (2 GB), so that a length prefix takes at most 5 bytes."""
PREFIX_MAX = 5

ERROR_RESULT, VOID_RESULT, NON_VOID_RESULT = 1, 2, 3
"""A completion's result kinds."""


def encode_length(length: int) -> bytes:
    """The VarInt length prefix: 7 bits a byte, the least significant first, the high bit set on all but the last."""
    if not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"a frame of {length} bytes cannot be framed (0 to {MAX_LENGTH})")
    out = bytearray()
    while length > 0x7F:
        out.append(length & 0x7F | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out)


def decode_length(data: bytes | bytearray, pos: int = 0) -> tuple[int, int] | None:
    """The length prefixed at ``pos`` and where its body starts, or None while the prefix is incomplete."""
    if pos < len(data) and data[pos] < 0x80:  # the common case: a body under 128 bytes
        return data[pos], pos + 1
    length = 0
    for index in range(PREFIX_MAX):
        if pos + index >= len(data):
            return None
        byte = data[pos + index]
        length |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if index == PREFIX_MAX - 1 and byte > 0x07:
                break
            return length, pos + index + 1
    raise ProtocolError("invalid length prefix: more than 5 bytes or over 2 GB")


def frame(body: bytes) -> bytes:
    """One frame: the body behind its length prefix."""
    return encode_length(len(body)) + body


class RecordReader:
    """Splits a byte stream into frame bodies; a partial frame waits for more input.

    ``max_size`` bounds one body: a declared length over it raises MessageTooLarge as soon as the prefix is
    read, before the body arrives. ``feed(data, limit)`` returns at most ``limit`` bodies and keeps the rest,
    unsplit, for the next ``feed(b"", limit)``, as ``hubjson.RecordReader`` does with text.
    """

    __slots__ = ("_buffer", "_start", "max_size")

    def __init__(self, max_size: int = 32 * 1024) -> None:
        self._buffer = bytearray()
        self._start = 0  # where the unread bytes begin in ``_buffer``
        self.max_size = max_size

    def feed(self, data: bytes, limit: int = 0) -> list[bytes]:
        """Add ``data``; return the complete frame bodies, at most ``limit`` of them (0: all)."""
        buffer = self._buffer
        buffer += data
        records: list[bytes] = []
        pos = self._start
        while not limit or len(records) < limit:
            header = decode_length(buffer, pos)
            if header is None:
                break
            length, body = header
            if length > self.max_size:
                raise MessageTooLarge(length, self.max_size)
            if body + length > len(buffer):
                break
            records.append(bytes(buffer[body:body + length]))
            pos = body + length
        self._start = pos
        if not self.backlog:
            del buffer[:pos]
            self._start = 0
        return records

    @property
    def backlog(self) -> bool:
        """True when a complete frame waits for the next ``feed`` (a limited feed stopped at its limit)."""
        header = decode_length(self._buffer, self._start)
        return header is not None and header[1] + header[0] <= len(self._buffer)

    @property
    def buffered(self) -> bytes:
        """The bytes not yet returned as frame bodies."""
        return bytes(self._buffer[self._start:])

    @property
    def pending(self) -> bool:
        """True when bytes wait: a partial frame, or complete ones behind a limited feed."""
        return len(self._buffer) > self._start


def split(data: bytes, max_size: int) -> list[bytes]:
    """The frame bodies of a buffer that must hold whole frames (a request body, say), or ProtocolError."""
    reader = RecordReader(max_size)
    records = reader.feed(data)
    if reader.pending:
        header = decode_length(reader.buffered)
        if header is None:
            raise ProtocolError("truncated length prefix")
        raise ProtocolError(f"truncated frame: {header[0]} bytes declared, {len(reader.buffered) - header[1]} sent")
    return records


# --- values -------------------------------------------------------------------------------------


def _reject_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"invalid MessagePack: extension type {code} is not supported")


def _unpack(record: bytes) -> Any:
    try:
        return msgpack.unpackb(record, raw=False, timestamp=3, strict_map_key=True, ext_hook=_reject_ext)
    except ProtocolError:
        raise
    except msgpack.StackError:
        raise ProtocolError("invalid MessagePack: nested too deeply") from None
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise ProtocolError(f"invalid MessagePack: {exc}") from None


def pack(value: Any) -> bytes:
    """MessagePack of ``value``; raises TypeError or ValueError for what it cannot carry.

    A string holding a lone surrogate (from a JSON client's ``"\\ud800"``) is written with ``?`` in its place,
    since MessagePack strings are UTF-8.
    """
    try:
        packed: bytes = msgpack.packb(value, use_bin_type=True, datetime=True)
    except UnicodeEncodeError:
        packed = msgpack.packb(value, use_bin_type=True, datetime=True, unicode_errors="replace")
    except OverflowError:
        raise ValueError("an integer is out of MessagePack's 64-bit range") from None
    return packed


# --- parsing -----------------------------------------------------------------------------------


def _get(array: list[Any], index: int, kind: type | tuple[type, ...], name: str, *, nullable: bool = False) -> Any:
    value = array[index]
    if value is None and nullable:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"element {index} ({name}) has the wrong type")
    return value


def _headers(array: list[Any]) -> dict[str, str] | None:
    headers = _get(array, 1, dict, "headers")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ProtocolError("header keys and values must be strings")
    return headers or None


def _stream_ids(array: list[Any]) -> list[str] | None:
    if len(array) < 6:
        return None
    ids = _get(array, 5, list, "streamIds")
    if not all(isinstance(i, str) for i in ids):
        raise ProtocolError("streamIds must be strings")
    return ids or None


def _invocation(a: list[Any]) -> Invocation:
    invocation_id = _get(a, 2, str, "invocationId", nullable=True)
    return Invocation(_get(a, 3, str, "target"), _get(a, 4, list, "arguments"), invocation_id, _stream_ids(a),
                      _headers(a))


def _stream_invocation(a: list[Any]) -> StreamInvocation:
    return StreamInvocation(_get(a, 3, str, "target"), _get(a, 4, list, "arguments"),
                            _get(a, 2, str, "invocationId"), _stream_ids(a), _headers(a))


def _completion(a: list[Any]) -> Completion:
    invocation_id, headers = _get(a, 2, str, "invocationId"), _headers(a)
    kind = _get(a, 3, int, "resultKind")
    if kind == VOID_RESULT:
        return Completion(invocation_id, headers=headers)
    if kind not in (ERROR_RESULT, NON_VOID_RESULT):
        raise ProtocolError(f"invalid completion result kind {kind}")
    if len(a) < 5:
        raise ProtocolError(f"a completion of result kind {kind} needs 5 elements, got {len(a)}")
    if kind == ERROR_RESULT:
        return Completion(invocation_id, error=_get(a, 4, str, "error"), headers=headers)
    return Completion(invocation_id, a[4], None, True, headers)


def _close(a: list[Any]) -> Close:
    allow = _get(a, 2, bool, "allowReconnect", nullable=True) if len(a) > 2 else False
    return Close(_get(a, 1, str, "error", nullable=True), bool(allow))


# (the fewest elements, the parser) per type; later elements are ignored, as SignalR's own parsers do.
_PARSERS: dict[int, tuple[int, Callable[[list[Any]], HubMessage]]] = {
    MessageType.INVOCATION: (5, _invocation),
    MessageType.STREAM_ITEM: (4, lambda a: StreamItem(_get(a, 2, str, "invocationId"), a[3], _headers(a))),
    MessageType.COMPLETION: (4, _completion),
    MessageType.STREAM_INVOCATION: (5, _stream_invocation),
    MessageType.CANCEL_INVOCATION: (3, lambda a: CancelInvocation(_get(a, 2, str, "invocationId"), _headers(a))),
    MessageType.PING: (1, lambda a: Ping()),
    MessageType.CLOSE: (2, _close),
    MessageType.ACK: (2, lambda a: Ack(_get(a, 1, int, "sequenceId"))),
    MessageType.SEQUENCE: (2, lambda a: Sequence(_get(a, 1, int, "sequenceId"))),
}


def parse_message(record: bytes) -> HubMessage:
    """Parse one frame body (without its length prefix) into a message, or raise ProtocolError.

    An integer type this protocol does not define becomes an UnknownMessage, for the receiver to ignore.
    """
    array = _unpack(record)
    if not isinstance(array, list) or not array:
        raise ProtocolError("a message must be a non-empty MessagePack array")
    kind = _get(array, 0, int, "type")
    entry = _PARSERS.get(kind)
    if entry is None:
        return UnknownMessage(kind)
    size, parser = entry
    if len(array) < size:
        raise ProtocolError(f"a message of type {kind} needs {size} elements, got {len(array)}")
    return parser(array)


# --- encoding ----------------------------------------------------------------------------------


def _completion_array(message: Completion) -> list[Any]:
    head: list[Any] = [3, message.headers or {}, message.invocation_id]
    if message.error is not None:
        return [*head, ERROR_RESULT, message.error]
    if message.has_result:
        return [*head, NON_VOID_RESULT, message.result]
    return [*head, VOID_RESULT]


def to_array(message: HubMessage) -> list[Any]:
    """The MessagePack array of a message (the inverse of parse_message)."""
    match message:
        case Invocation(target, arguments, invocation_id, stream_ids, headers):
            return [1, headers or {}, invocation_id, target, arguments, stream_ids or []]
        case StreamInvocation(target, arguments, invocation_id, stream_ids, headers):
            return [4, headers or {}, invocation_id, target, arguments, stream_ids or []]
        case StreamItem(invocation_id, item, headers):
            return [2, headers or {}, invocation_id, item]
        case Completion():
            return _completion_array(message)
        case CancelInvocation(invocation_id, headers):
            return [5, headers or {}, invocation_id]
        case Ping():
            return [6]
        case Close(error, allow_reconnect):
            return [7, error, True] if allow_reconnect else [7, error]
        case Ack(sequence_id):
            return [8, sequence_id]
        case Sequence(sequence_id):
            return [9, sequence_id]
    raise TypeError(f"not a hub message: {message!r}")


def encode(message: HubMessage) -> bytes:
    """One frame, length prefix included."""
    return frame(pack(to_array(message)))


PING = encode(Ping())


def encode_invocation(target: str, arguments: list[Any]) -> bytes:
    """The frame of a server-to-client call; encoded once per broadcast, whatever the recipients."""
    return frame(pack([1, {}, None, target, arguments, []]))


def encode_completion(invocation_id: str, result: Any) -> bytes:
    """The frame of a successful invocation's result."""
    return frame(pack([3, {}, invocation_id, NON_VOID_RESULT, result]))
