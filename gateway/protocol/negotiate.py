"""Negotiate: the request's query, the response body, and the error body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError

MAX_NEGOTIATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class NegotiateRequest:
    version: int
    stateful_reconnect: bool


@dataclass(frozen=True, slots=True)
class NegotiateResponse:
    connection_id: str
    connection_token: str | None
    version: int
    transports: tuple[str, ...]
    stateful_reconnect: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"connectionId": self.connection_id, "negotiateVersion": self.version}
        if self.version >= 1 and self.connection_token is not None:
            body["connectionToken"] = self.connection_token
        body["availableTransports"] = [{"transport": t, "transferFormats": ["Text"]} for t in self.transports]
        if self.stateful_reconnect:
            body["useStatefulReconnect"] = True
        return body

    @property
    def token(self) -> str:
        """What goes in ``?id=``: the token in version 1, the connection id in version 0."""
        return self.connection_token if self.connection_token is not None else self.connection_id


def parse_negotiate_query(query: Mapping[str, str]) -> NegotiateRequest:
    raw = query.get("negotiateVersion", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4:
        raise ProtocolError("negotiateVersion must be a non-negative integer")
    stateful = query.get("useStatefulReconnect", "false").lower()
    if stateful not in ("true", "false"):
        raise ProtocolError("useStatefulReconnect must be true or false")
    return NegotiateRequest(min(int(raw), MAX_NEGOTIATE_VERSION), stateful == "true")


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
        version = int(obj.get("negotiateVersion", 0))
        token = obj.get("connectionToken")
        if not isinstance(obj["connectionId"], str) or not (token is None or isinstance(token, str)):
            raise TypeError
        if version >= 1 and token is None:
            raise KeyError("connectionToken")
        return NegotiateResponse(
            obj["connectionId"], token, version, transports, bool(obj.get("useStatefulReconnect", False)),
        )
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: int(1e999)
        raise ProtocolError("negotiate response is missing fields or has the wrong types") from None


def error_body(message: str) -> dict[str, str]:
    return {"error": message}
