"""Pending connections (negotiated, no stream yet): admitted within their caps, and closed once their lifetime
is over, by a task that runs only while some exist."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from .limits import PendingLimiter
from .negotiate import Refusal
from .registry import Registry


class PendingExpiry:
    """Closes the pending connections of ``limiter`` whose lifetime is over, in batches with the event loop
    free in between; after a burst, gives the tables' memory back."""

    __slots__ = ("limiter", "registry", "clock", "_task")

    def __init__(self, limiter: PendingLimiter, registry: Registry, clock: Callable[[], float]) -> None:
        self.limiter = limiter
        self.registry = registry
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def refusal(self, client: str) -> Refusal | None:
        """Why ``client`` may not have one more pending connection, if it may not."""
        refused = self.limiter.refused(client)
        if refused is None:
            return None
        return Refusal(*refused, max(1, math.ceil(self.limiter.lifetime)))

    def add(self, connection_id: str, client: str) -> None:
        """A pending connection was made: make sure one task is there to expire pending connections."""
        self.limiter.add(connection_id, client, self.clock())
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        """Expire pending connections as their lifetime ends; the task ends once none is left."""
        while len(self.limiter):
            await asyncio.sleep(min(1.0, self.limiter.lifetime / 4))
            while self.expire(self.clock()):
                await asyncio.sleep(0)
        self.expire(self.clock())

    def expire(self, now: float, batch: int = 256) -> bool:
        """Close up to ``batch`` pending connections whose lifetime is over; True if more are due."""
        for connection_id in self.limiter.expired(now, batch):
            conn = self.registry.by_id.get(connection_id)
            if conn is not None:  # the lifecycle logs it, with the connection id
                conn.close("negotiated but never connected")
        if self.limiter.due(now):
            return True
        if self.limiter.shrunk():  # after a burst, give the tables' memory back
            self.registry.compact()
        return False
