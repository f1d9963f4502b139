"""The hub protocols behind one interface, chosen by the name a client asks for in its handshake.

A protocol's records are ``str`` when its transfer format is ``Text`` (JSON) and ``bytes`` when it is
``Binary`` (MessagePack). The handshake itself is always JSON text ended by 0x1E: see ``hubjson``.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Protocol, TypeVar

from . import hubjson, hubmsgpack
from .errors import MessageTooLarge, ProtocolError
from .messages import HubMessage

R = TypeVar("R", str, bytes)

TransferFormat = Literal["Text", "Binary"]


class RecordReader(Protocol[R]):
    """Splits a stream into records, at most ``limit`` a feed (0: all); the rest waits for ``feed(empty)``."""

    def feed(self, data: R, limit: int = 0) -> list[R]: ...

    @property
    def backlog(self) -> bool: ...

    @property
    def pending(self) -> bool: ...

    @property
    def buffered(self) -> R:
        """What was fed and not yet returned as records."""


class HubProtocol(Protocol[R]):
    """A hub protocol: its handshake name and version, how it frames records, and its codec."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def transfer_format(self) -> TransferFormat: ...

    def encode(self, message: HubMessage) -> R:
        """One record, framing included."""

    def parse(self, record: R) -> HubMessage:
        """One record as the reader returns it (no framing) into a message, or ProtocolError."""

    def reader(self, max_size: int) -> RecordReader[R]:
        """A reader whose records may not exceed ``max_size`` bytes."""

    def encode_invocation(self, target: str, arguments: list[Any]) -> R:
        """The record of a non-blocking call, encoded once per broadcast."""

    def encode_completion(self, invocation_id: str, result: Any) -> R:
        """The record of a successful invocation's result."""


class JsonProtocol:
    """``{"protocol":"json"}``: text records ended by 0x1E (``hubjson``)."""

    name: Final = "json"
    version: Final = 1
    transfer_format: Final[TransferFormat] = "Text"

    def encode(self, message: HubMessage) -> str:
        return hubjson.encode(message)

    def parse(self, record: str) -> HubMessage:
        return hubjson.parse_message(record)

    def reader(self, max_size: int) -> hubjson.RecordReader:
        return hubjson.RecordReader(max_size)

    def encode_invocation(self, target: str, arguments: list[Any]) -> str:
        return hubjson.encode_invocation(target, arguments)

    def encode_completion(self, invocation_id: str, result: Any) -> str:
        return hubjson.encode_completion(invocation_id, result)


class MessagePackProtocol:
    """``{"protocol":"messagepack"}``: MessagePack arrays behind a VarInt length (``hubmsgpack``)."""

    name: Final = "messagepack"
    version: Final = 1
    transfer_format: Final[TransferFormat] = "Binary"

    def encode(self, message: HubMessage) -> bytes:
        return hubmsgpack.encode(message)

    def parse(self, record: bytes) -> HubMessage:
        return hubmsgpack.parse_message(record)

    def reader(self, max_size: int) -> hubmsgpack.RecordReader:
        return hubmsgpack.RecordReader(max_size)

    def encode_invocation(self, target: str, arguments: list[Any]) -> bytes:
        return hubmsgpack.encode_invocation(target, arguments)

    def encode_completion(self, invocation_id: str, result: Any) -> bytes:
        return hubmsgpack.encode_completion(invocation_id, result)


JSON: Final[HubProtocol[str]] = JsonProtocol()
MESSAGEPACK: Final[HubProtocol[bytes]] = MessagePackProtocol()

PROTOCOLS: Final[dict[str, HubProtocol[Any]]] = {JSON.name: JSON, MESSAGEPACK.name: MESSAGEPACK}
"""The hub protocols by the name a handshake asks for."""


def split_handshake(data: bytes, max_size: int) -> tuple[str, bytes] | None:
    """The handshake record that ``data`` starts with, as text without its 0x1E, and the bytes after it.

    None while the 0x1E has not arrived. On a Binary protocol the handshake (request or response) is JSON
    text and MessagePack frames may follow it in the same chunk; the rest goes to the protocol's reader.
    """
    end = data.find(b"\x1e", 0, max_size + 1)
    if end < 0:
        if len(data) > max_size:
            raise MessageTooLarge(len(data), max_size)
        return None
    try:
        text = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("the handshake is not UTF-8 text") from None
    return text, data[end + 1:]
