"""ForeverFrame: a held ``text/html`` page of script chunks, read as a browser's iframe would run it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import ClassVar

from ..protocol.framing import ForeverFrameParser
from .http import Origin
from .transport import HttpStreamTransport


def frame_params(origin: Origin) -> dict[str, str]:
    """The frame's query: the frame posts to the embedding page's origin; a Python client is its own page."""
    return {"transport": "ForeverFrame", "origin": origin.http_origin, "frame": secrets.token_hex(4)}


class ForeverFrameTransport(HttpStreamTransport):
    name: ClassVar[str] = "ForeverFrame"

    __slots__ = ()

    def _params(self) -> dict[str, str]:
        return frame_params(self._origin)

    def _parser(self) -> Callable[[bytes], Sequence[str | None]]:
        return ForeverFrameParser().feed
