"""Negotiate: the request's query, the response body, and the error body."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ProtocolError
from .transports import OPT_IN, TEXT, TRANSFER_FORMATS

MAX_NEGOTIATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class NegotiateRequest:
    version: int
    stateful_reconnect: bool
    forever_frame: bool = False
    """``foreverFrame=true``: the client knows our ForeverFrame transport and wants it listed."""

    def listed(self, offered: Sequence[str]) -> tuple[str, ...]:
        """The offered transports this request is told of: the opt-in ones (ForeverFrame) only if it asked."""
        return tuple(t for t in offered if t not in OPT_IN or self.forever_frame)


@dataclass(frozen=True, slots=True)
class NegotiateResponse:
    connection_id: str
    connection_token: str | None
    version: int
    transports: tuple[str, ...]
    stateful_reconnect: bool = False
    formats: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    """Client side: the transfer formats the server listed per transport (the server writes ``TRANSFER_FORMATS``)."""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"connectionId": self.connection_id, "negotiateVersion": self.version}
        if self.version >= 1 and self.connection_token is not None:
            body["connectionToken"] = self.connection_token
        body["availableTransports"] = [
            {"transport": t, "transferFormats": list(TRANSFER_FORMATS.get(t, (TEXT,)))} for t in self.transports
        ]
        if self.stateful_reconnect:
            body["useStatefulReconnect"] = True
        return body

    @property
    def token(self) -> str:
        """What goes in ``?id=``: the token in version 1, the connection id in version 0."""
        return self.connection_token if self.connection_token is not None else self.connection_id

    def carries(self, transport: str, transfer_format: str) -> bool:
        """Client side: whether the server listed ``transport`` with ``transfer_format`` (Text if it named none)."""
        return transport in self.transports and transfer_format in self.formats.get(transport, (TEXT,))


def parse_negotiate_query(query: Mapping[str, str]) -> NegotiateRequest:
    raw = query.get("negotiateVersion", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4:
        raise ProtocolError("negotiateVersion must be a non-negative integer")
    stateful = _flag(query, "useStatefulReconnect")
    return NegotiateRequest(min(int(raw), MAX_NEGOTIATE_VERSION), stateful, _flag(query, "foreverFrame"))


def _flag(query: Mapping[str, str], name: str) -> bool:
    """A ``true``/``false`` query parameter (any case; absent is false)."""
    value = query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise ProtocolError(f"{name} must be true or false")
    return value == "true"


def parse_negotiate_response(body: bytes | str) -> NegotiateResponse:
    """Client side: parse a negotiate body; an ``error`` body raises ProtocolError."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        raise ProtocolError("negotiate response is not JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("negotiate response is not an object")
    if "error" in obj:
        raise ProtocolError(f"negotiate refused: {obj['error']}")
    try:
        transports = tuple(str(t["transport"]) for t in obj["availableTransports"])
        formats = {str(t["transport"]): _formats(t) for t in obj["availableTransports"]}
        version = int(obj.get("negotiateVersion", 0))
        token = obj.get("connectionToken")
        if not isinstance(obj["connectionId"], str) or not (token is None or isinstance(token, str)):
            raise TypeError
        if version >= 1 and token is None:
            raise KeyError("connectionToken")
        return NegotiateResponse(
            obj["connectionId"], token, version, transports, bool(obj.get("useStatefulReconnect", False)), formats,
        )
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError):  # int(1e999); a list where a dict goes
        raise ProtocolError("negotiate response is missing fields or has the wrong types") from None


def _formats(entry: dict[str, Any]) -> tuple[str, ...]:
    """An ``availableTransports`` entry's ``transferFormats``: a list of strings (``["Text"]`` when absent)."""
    formats = entry.get("transferFormats", [TEXT])
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise TypeError("transferFormats")
    return tuple(formats)


def error_body(message: str) -> dict[str, str]:
    return {"error": message}
