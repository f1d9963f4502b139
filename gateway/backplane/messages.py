"""What processes tell each other through a backplane: frozen dataclasses, one JSON object each on the wire.

``encode(message)`` gives the text to publish and ``decode(text)`` the message back (ValueError when the
text is not one). The local node and the Redis backplane share these types; nothing else reads the wire.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from ..protocol.broadcast import Broadcast
from ..protocol.hubprotocols import PROTOCOLS

TargetKind = Literal["all", "group", "user", "connection"]
ForwardOp = Literal["post", "delete", "invalid", "binary"]
"""A forwarded request: a POST whose body is UTF-8 text, a DELETE, a POST whose body is not UTF-8 (from an
older process), a POST whose body is not UTF-8, in base64 (for a Binary hub protocol)."""
FORWARD_OPS: tuple[ForwardOp, ...] = ("post", "delete", "invalid", "binary")

_dumps = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: ``json.dumps`` with options makes one per call


@dataclass(frozen=True, slots=True)
class Target:
    """Who a record is for: every connection, some groups, users or connection ids, minus ``exclude``."""

    kind: TargetKind
    names: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """A connection handed from one process to another: who it is, and its core's snapshot."""

    id: str
    token: str
    user: str | None
    groups: tuple[str, ...]
    core: dict[str, Any] = field(compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "token": self.token, "user": self.user, "groups": list(self.groups), "core": self.core}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ConnectionState:
        return cls(str(obj["id"]), str(obj["token"]), obj["user"], tuple(obj["groups"]), dict(obj["core"]))


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver ``record`` to the connections ``target`` names, on every process.

    On the wire it is the record of every hub protocol that can carry the call, encoded once by the
    publisher: ``{"json": text, "messagepack": base64}``.
    """

    TYPE: ClassVar[str] = "send"
    hub: str
    target: Target
    record: Broadcast = field(compare=False)

    def to_json(self) -> dict[str, Any]:
        t = self.target
        records = {name: form if isinstance(form, str) else base64.b64encode(form).decode("ascii")
                   for name, form in self.record.records().items()}
        return {"hub": self.hub, "target": [t.kind, t.names, t.exclude], "records": records}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Send:
        kind, names, exclude = obj["target"]
        records: dict[str, str | bytes] = {}
        for name, form in dict(obj["records"]).items():
            protocol = PROTOCOLS.get(name)
            if protocol is not None:
                records[name] = str(form) if protocol.transfer_format == "Text" else base64.b64decode(form)
        return cls(obj["hub"], Target(kind, tuple(names), tuple(exclude)), Broadcast.of(records))


@dataclass(frozen=True, slots=True)
class GroupChange:
    """Add a connection to a group (or remove it), applied by the process that holds it."""

    TYPE: ClassVar[str] = "group"
    hub: str
    connection_id: str
    group: str
    add: bool


@dataclass(frozen=True, slots=True)
class Handover:
    """``to_node`` takes the connection over from ``from_node``; ``corr`` pairs it with its state reply."""

    TYPE: ClassVar[str] = "handover"
    hub: str
    connection_id: str
    from_node: str
    to_node: str
    corr: str


@dataclass(frozen=True, slots=True)
class HandoverState:
    """The old holder's answer to a handover: the connection's state, or None when it has no such connection."""

    TYPE: ClassVar[str] = "state"
    corr: str
    state: ConnectionState | None

    def to_json(self) -> dict[str, Any]:
        return {"corr": self.corr, "state": None if self.state is None else self.state.to_json()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> HandoverState:
        state = obj["state"]
        return cls(obj["corr"], None if state is None else ConnectionState.from_json(state))


@dataclass(frozen=True, slots=True)
class Forward:
    """A POST or DELETE that reached ``from_node`` for a connection held by the node it is sent to."""

    TYPE: ClassVar[str] = "forward"
    hub: str
    connection_id: str
    op: ForwardOp
    body: str
    from_node: str
    corr: str


@dataclass(frozen=True, slots=True)
class Reply:
    """The holder's answer to a Forward: the HTTP status, and the error to report with it."""

    TYPE: ClassVar[str] = "reply"
    corr: str
    status: int
    error: str | None


Message = Send | GroupChange | Handover | HandoverState | Forward | Reply
_FLAT: tuple[type[GroupChange | Handover | Forward | Reply], ...] = (GroupChange, Handover, Forward, Reply)


def _flat(cls: type[GroupChange | Handover | Forward | Reply]) -> Callable[[dict[str, Any]], Message]:
    return lambda obj: cls(**obj)


_DECODERS: dict[str, Callable[[dict[str, Any]], Message]] = {
    Send.TYPE: Send.from_json, HandoverState.TYPE: HandoverState.from_json, **{m.TYPE: _flat(m) for m in _FLAT},
}


def encode(message: Message) -> str:
    """The JSON text of ``message``."""
    if isinstance(message, Send | HandoverState):
        body = message.to_json()
    else:
        body = {f.name: getattr(message, f.name) for f in fields(message)}
    return _dumps({"type": message.TYPE, **body})


def decode(text: str | bytes) -> Message:
    """The message ``text`` encodes; ValueError when it encodes none."""
    try:
        obj = json.loads(text)
        message = _DECODERS[obj.pop("type")](obj)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a backplane message: {exc!r}") from None
    if isinstance(message, Forward) and message.op not in FORWARD_OPS:
        raise ValueError(f"not a backplane message: unknown op {message.op!r}")
    return message
