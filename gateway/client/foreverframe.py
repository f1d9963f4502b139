"""ForeverFrame: a held ``text/html`` page of script chunks, read as a browser's iframe would run it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import ClassVar

from ..protocol.framing import ForeverFrameParser
from .transport import HttpStreamTransport


class ForeverFrameTransport(HttpStreamTransport):
    name: ClassVar[str] = "ForeverFrame"

    __slots__ = ()

    def _params(self) -> dict[str, str]:
        # The frame posts to the embedding page's origin; a Python client is its own page.
        return {"transport": self.name, "origin": self._origin.http_origin, "frame": secrets.token_hex(4)}

    def _parser(self) -> Callable[[bytes], Sequence[str | None]]:
        return ForeverFrameParser().feed
