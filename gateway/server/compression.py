"""WebSocket compression is not offered: permessage-deflate is declined, whichever uvicorn stack serves the socket.

Why. uvicorn offers permessage-deflate by default and every browser asks for it. A client that has it can send
a few KB that inflate to many MB before any size check: wsproto inflates without a bound (200 MiB measured
from a 200 KB frame), websockets up to ``ws_max_size`` (16 MiB by default, from 16 KB). Compression also costs
every connection its zlib state (measured: 25 -> 125 KiB per connection on wsproto, 28 -> 70 KiB on websockets)
and a compression per message per recipient of a broadcast, and mixing secrets with attacker-chosen text in one
compressed stream is what CRIME-style attacks read. ASP.NET Core SignalR does not negotiate it either. The records
we send are small: what compression would save in bytes, it costs in memory and CPU.

How. ``install()`` (called when a Gateway is created) makes both libraries' server side decline the extension,
through their public extension classes, so that the plain ``uvicorn app:app`` defaults are safe. It applies to the
whole process, as ``uvicorn --ws-per-message-deflate false`` would. A frame a client sends compressed anyway is a
protocol error that the library answers with a close frame.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

log = logging.getLogger("gateway")

_installed = False


def _decline_wsproto(self: Any, offer: str) -> None:
    """wsproto's ``Extension.accept``: None declines the offer."""
    return None


def _decline_websockets(self: Any, params: Any, accepted: Any) -> NoReturn:
    """websockets' ``ServerExtensionFactory.process_request_params``: NegotiationError declines the offer."""
    from websockets.exceptions import NegotiationError

    raise NegotiationError("permessage-deflate is not offered by this server")


def install() -> None:
    """Decline permessage-deflate in wsproto and websockets (whichever are installed), once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from wsproto.extensions import PerMessageDeflate
    except ImportError:  # pragma: no cover - wsproto is a dependency
        pass
    else:
        PerMessageDeflate.accept = _decline_wsproto  # type: ignore[method-assign]
    try:
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
    except ImportError:  # websockets is optional
        pass
    else:
        ServerPerMessageDeflateFactory.process_request_params = _decline_websockets  # type: ignore[method-assign,assignment]
    log.debug("WebSocket compression (permessage-deflate) is declined for this process")
