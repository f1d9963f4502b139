"""The ticker: once a tick, due keep-alives go out, connections whose deadlines passed close, and the
recently closed are forgotten. ``tick(now)`` is the whole logic; the loop only supplies ``now``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .connection import ServerConnection
from .lookup import Closed
from .registry import Registry

log = logging.getLogger("gateway")


class Ticker:
    """Calls ``tick(clock())`` every ``interval`` seconds once started."""

    __slots__ = ("registry", "closed", "clock", "interval", "_task")

    def __init__(self, registry: Registry, closed: Closed, clock: Callable[[], float], interval: float) -> None:
        self.registry = registry
        self.closed = closed
        self.clock = clock
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> bool:
        """Start the loop unless it runs; True when it was started now."""
        if self._task is not None and not self._task.done():
            return False
        self._task = asyncio.ensure_future(self._run())
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.tick(self.clock())

    def tick(self, now: float) -> None:
        """Send due keep-alives, close connections whose deadlines passed, forget closed ones."""
        self.closed.expire(now)
        due: list[tuple[ServerConnection, str]] = []
        for conn in self.registry.by_id.values():  # no copy: closing waits until the walk is over
            reason = conn.core.tick(now)
            if reason is not None:
                due.append((conn, reason))
            elif conn.core.has_output:
                conn.wake.set()
        for conn, reason in due:
            log.info("connection %s closed: %s", conn.id, reason)
            conn.close(reason)
