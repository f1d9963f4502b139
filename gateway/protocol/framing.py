"""Per-transport framing, as pure functions, with the parsers a client needs.

ServerSentEvents: ``data:`` events. ForeverFrame: an HTML page of ``<script>`` chunks whose payload
is a JSON string escaped so that it can never end the script or inject markup. LongPolling: the
body is the records as they are.
"""

from __future__ import annotations

import json
import re

from .errors import MessageTooLarge, ProtocolError

# --- Server-Sent Events -------------------------------------------------------------------------

SSE_PRELUDE = b":\n\n"
SSE_COMMENT = b":\n\n"


def sse_event(payload: str) -> bytes:
    """One event carrying ``payload``; a payload with line breaks becomes several data lines."""
    if "\n" in payload or "\r" in payload:
        lines = payload.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return ("".join(f"data: {line}\n" for line in lines) + "\n").encode()
    return b"data: " + payload.encode() + b"\n\n"


_LINE = re.compile(rb"\r\n|\r|\n")


class SSEParser:
    """Turns a byte stream into the data of each event (comments and other fields are skipped)."""

    __slots__ = ("_buffer", "_data", "_max", "_pending_cr")

    def __init__(self, max_event: int = 1 << 20) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._max = max_event
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        if not chunk:
            return []  # keep a pending \r for the next non-empty chunk
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        buffer = self._buffer + chunk
        events: list[str] = []
        pos = 0
        for match in _LINE.finditer(buffer):
            if match.group() == b"\r" and match.end() == len(buffer):
                self._pending_cr = True  # a \r\n may be split across chunks
            self._line(buffer[pos:match.start()], events)
            pos = match.end()
        self._buffer = buffer[pos:]
        if len(self._buffer) + sum(map(len, self._data)) > self._max:
            raise MessageTooLarge(len(self._buffer), self._max)
        return events

    def _line(self, line: bytes, events: list[str]) -> None:
        if not line:
            if self._data:
                events.append(b"\n".join(self._data).decode("utf-8", "replace"))
                self._data = []
            return
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)


# --- ForeverFrame ---------------------------------------------------------------------------------

_FRAME_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# An origin a frame may post to: http(s), a DNS name or an IP literal, an optional port; nothing else (no path,
# no user info, no "*", no "null"): postMessage's targetOrigin must name one origin.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TARGET_ORIGIN = re.compile(
    rf"https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]{{2,45}}\])(?::(?:[1-9][0-9]{{0,4}}))?"
)
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_UNSAFE = re.compile("[<>&\u2028\u2029]")
FF_PADDING = 2048


def valid_frame_id(frame: str) -> bool:
    return _FRAME_ID.fullmatch(frame) is not None


def valid_target_origin(origin: str) -> bool:
    """Whether ``origin`` is one real ``scheme://host[:port]`` (http or https), never ``*`` or ``null``."""
    match = _TARGET_ORIGIN.fullmatch(origin)
    if match is None or len(origin) > 300:
        return False
    port = origin.rpartition(":")[2]
    return not port.isdigit() or int(port) <= 65535


def script_string(payload: str | None) -> str:
    """A JS literal for ``payload`` that is safe inside ``<script>``: no ``</``, ``<!--``, U+2028/9."""
    try:
        text = json.dumps(payload, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: write it escaped
        text = json.dumps(payload)
    return _UNSAFE.sub(lambda m: _ESCAPES[m.group()], text)


def ff_prelude(origin: str, frame: str) -> bytes:
    """The start of the frame document: the function that posts each payload to the parent page."""
    if not valid_frame_id(frame):
        raise ProtocolError("frame id must match [A-Za-z0-9_-]{1,64}")
    if not valid_target_origin(origin):
        raise ProtocolError("the frame's origin must be scheme://host[:port]")
    script = (
        "var g=function(d){var s=document.currentScript;"
        f"parent.postMessage({{gw:{script_string(frame)},d:d}},{script_string(origin)});"
        "if(s&&s.parentNode)s.parentNode.removeChild(s)};"
    )
    head = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>gateway</title></head><body>'
    padding = "<!--" + " " * FF_PADDING + "-->\n"
    return f"{head}<script>{script}</script>\n{padding}".encode()


def ff_chunk(payload: str | None) -> bytes:
    """One script chunk handing ``payload`` (records, or None for end of stream) to the parent."""
    return f"<script>g({script_string(payload)})</script>\n".encode()


FF_END = ff_chunk(None)

_CHUNK = re.compile(rb"<script>g\((.*?)\)</script>", re.S)
_BLANK = b" \t\r\n"
_PRELUDE_END = b"-->\n"


class ForeverFrameParser:
    """Client side: yields each payload of a ForeverFrame stream (None marks the end).

    White space between chunks is skipped wherever the stream was split; after the end marker the
    rest of the document (closing tags) is ignored.
    """

    __slots__ = ("_buffer", "_ended", "_in_body", "_max")

    def __init__(self, max_chunk: int = 1 << 20) -> None:
        self._buffer = b""
        self._ended = False
        self._in_body = False
        self._max = max_chunk

    def feed(self, data: bytes) -> list[str | None]:
        if self._ended:
            return []
        self._buffer += data
        if not self._in_body:
            end = self._buffer.find(_PRELUDE_END)
            if end < 0:
                self._bound()
                return []
            self._buffer = self._buffer[end + len(_PRELUDE_END):]
            self._in_body = True
        payloads: list[str | None] = []
        buffer = self._buffer.lstrip(_BLANK)
        while (match := _CHUNK.match(buffer)) is not None:
            payload = _load_script_string(match.group(1))
            payloads.append(payload)
            buffer = buffer[match.end():].lstrip(_BLANK)
            if payload is None:
                self._ended = True
                buffer = b""
                break
        self._buffer = buffer
        if buffer and not b"<script>g(".startswith(buffer[:10]):
            raise ProtocolError("unexpected bytes in a ForeverFrame stream")
        self._bound()
        return payloads

    def _bound(self) -> None:
        if len(self._buffer) > self._max:
            raise MessageTooLarge(len(self._buffer), self._max)


def _load_script_string(raw: bytes) -> str | None:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the interpreter's stack
        raise ProtocolError("a ForeverFrame chunk is not a JSON string") from None
    if value is not None and not isinstance(value, str):
        raise ProtocolError("a ForeverFrame chunk is not a JSON string")
    return value
