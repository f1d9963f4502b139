"""Draining a process: its connections leave for other processes, and nothing is lost on the way.

Every connection that can resume (stateful, handshaken) has its stream ended, without a Close message: its client
resumes the same connection, through the balancer, on another process, which takes it over through the
backplane's handover (queued and unacknowledged messages included). A draining process refuses streams (503,
so that a balancer tries the next process), and negotiates. A connection that cannot resume is closed with a Close
message that allows reconnecting: its client negotiates afresh elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .registry import Registry

log = logging.getLogger("gateway")

RETRY_SOON = [(b"retry-after", b"1")]
POLL = 0.05


async def drain(registry: Registry, clock: Callable[[], float], timeout: float) -> int:
    """Let every connection of ``registry`` go, then wait until it is empty or ``timeout`` passed; how many are
    left."""
    total = len(registry)
    for conn in list(registry):
        if conn.core.stateful and conn.core.handshaken:
            conn.let_go()
        else:
            conn.close("server shutting down", allow_reconnect=True)
    deadline = clock() + timeout
    while len(registry) and clock() < deadline:
        await asyncio.sleep(POLL)
        for conn in list(registry):  # one that attached meanwhile (a POST's poll racing the drain)
            if conn.stream is not None:
                conn.let_go()
    left = len(registry)
    log.info("drained: %d of %d connections moved to other processes, %d stayed", total - left, total, left)
    return left
