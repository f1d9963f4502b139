"""The hub protocol's messages, as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class MessageType(IntEnum):
    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7
    ACK = 8
    SEQUENCE = 9


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    protocol: str
    version: int


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Invocation:
    target: str
    arguments: list[Any]
    invocation_id: str | None = None
    stream_ids: list[str] | None = None
    headers: dict[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StreamInvocation:
    target: str
    arguments: list[Any]
    invocation_id: str
    stream_ids: list[str] | None = None
    headers: dict[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StreamItem:
    invocation_id: str
    item: Any
    headers: dict[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Completion:
    invocation_id: str
    result: Any = None
    error: str | None = None
    has_result: bool = False
    headers: dict[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CancelInvocation:
    invocation_id: str
    headers: dict[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Close:
    error: str | None = None
    allow_reconnect: bool = False


@dataclass(frozen=True, slots=True)
class Ack:
    sequence_id: int


@dataclass(frozen=True, slots=True)
class Sequence:
    sequence_id: int


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A record of a type this protocol version does not define: ignored, so that newer peers can add types."""

    type: int


HubMessage = (
    Invocation | StreamInvocation | StreamItem | Completion | CancelInvocation | Ping | Close | Ack | Sequence
    | UnknownMessage
)

TRACKABLE: tuple[type, ...] = (Invocation, StreamInvocation, StreamItem, Completion, CancelInvocation)
"""Messages that carry an (implicit) sequence id under stateful reconnect."""


def is_trackable(message: HubMessage) -> bool:
    return isinstance(message, TRACKABLE)
