"""Learning that the server is stopping, from the signal that stops it.

On SIGTERM (or Ctrl+C) uvicorn stops accepting, then waits for every open response to end before it runs the
lifespan shutdown, and by default it waits forever. An event stream, a forever-frame or a held poll never ends by
itself, so the gateway must end them first; but ASGI has no "server stopping" event. So the gateway listens for the
same signals beside the server: ``on_stop`` chains a handler in front of the one installed (uvicorn's), which keeps
running as before. The gateway's own work is scheduled on its event loop, as asyncio asks of signal handlers.

Only the main thread may set signal handlers; elsewhere (a server run in a thread, as in tests) the lifespan
shutdown stays the only way the gateway learns of the stop.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, FrameType | None], Any]

_listeners: list[tuple[asyncio.AbstractEventLoop, weakref.WeakMethod[Callable[[], None]]]] = []
_previous: dict[int, Handler] = {}


def _handle(signum: int, frame: FrameType | None) -> None:
    """Tell every listener on a live loop, then run the handler this one was put in front of."""
    for loop, ref in list(_listeners):
        callback = ref()
        if callback is None or loop.is_closed():
            _listeners.remove((loop, ref))
        else:
            loop.call_soon_threadsafe(callback)
    previous = _previous.get(signum)
    if previous is not None:
        previous(signum, frame)


def on_stop(callback: Callable[[], None]) -> bool:
    """Call ``callback`` (a bound method, held weakly) on the running loop when the process is asked to stop.

    Returns False when no stop signal can be heard here: not the main thread, or no server handles the signals.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    chained = [sig for sig in SIGNALS if _chain(sig)]
    loop = asyncio.get_running_loop()
    if chained and not any(known is loop and ref() == callback for known, ref in _listeners):
        _listeners.append((loop, weakref.WeakMethod(callback)))
    return bool(chained)


def _chain(sig: signal.Signals) -> bool:
    """Put ``_handle`` in front of the handler of ``sig``, unless already there; False if there is none to chain."""
    current = signal.getsignal(sig)
    if current is _handle:
        return True
    if not callable(current):  # SIG_DFL or SIG_IGN: no server is listening, the process just ends (or ignores it)
        return False
    _previous[sig] = current
    signal.signal(sig, _handle)
    return True
