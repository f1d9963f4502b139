"""When each connection's core next has something to do (a keep-alive ping, a timeout), and one timer for all.

Theory of operation
-------------------
Every live connection has one entry in a heap, keyed by ``core.next_due(now)``: a time never later than
its true next deadline. Activity (a send, a receive) only moves deadlines later, so entries stay valid
without being touched on the hot path; an entry that comes up early just ticks the core (nothing due)
and goes back in at the new time. A state change that may move a deadline earlier (a stream attached or
detached, the handshake) calls ``schedule``, which pushes a new entry only when it is earlier; the old
one is then stale and skipped when it comes up. One loop timer is armed at the head of the heap, rounded up
to a grid of ``grain`` seconds: one wake-up serves every deadline that falls in the same step (10,000
connections on a 15 s keep-alive wake the loop once a second, not 667 times), a ping goes out at most one
grain late, and an idle server does not wake at all. A due ping is written by the stream's writer, from the
timer, when the stream is idle: no stream task is woken for it (see ``ServerConnection.flush``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Callable

from .connection import ServerConnection

log = logging.getLogger("gateway")

NEVER = float("inf")
GRAIN = 1.0
"""The timer's step, in seconds, with the default limits (``grain`` scales it down for shorter lifetimes)."""


def grain(*lifetimes: float) -> float:
    """The step for these lifetimes (keep-alive, timeouts): at most ``GRAIN``, and a fifteenth of the shortest,
    so that a ping or a timeout is late by a small part of its interval whatever the settings."""
    return min(GRAIN, min(lifetimes, default=GRAIN) / 15)


class Deadlines:
    """The heap of connections by next deadline, and the timer that wakes at its head."""

    __slots__ = ("_clock", "_grain", "_heap", "_order", "_handle", "_at", "_stale")

    def __init__(self, clock: Callable[[], float], step: float = 0.0) -> None:
        self._clock = clock
        self._grain = step
        self._heap: list[tuple[float, int, ServerConnection]] = []
        self._order = itertools.count()  # ties never compare connections
        self._handle: asyncio.TimerHandle | None = None
        self._at = NEVER
        self._stale = 0  # entries of connections that closed, still in the heap

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, conn: ServerConnection) -> None:
        """``conn``'s deadlines may have moved earlier (a new state): make sure it is woken in time."""
        due = conn.core.next_due(self._clock())
        if due is None or due >= conn.due:
            return
        conn.due = due
        heapq.heappush(self._heap, (due, next(self._order), conn))
        self._arm(due)

    def discard(self, conn: ServerConnection) -> None:
        """``conn`` closed: its entry is skipped when it comes up, and once stale entries are half the heap it
        is rebuilt without them, so a burst of closes does not hold its connections until their deadlines."""
        if conn.due == NEVER:
            return
        conn.due = NEVER
        self._stale += 1
        if self._stale > 64 and self._stale * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if entry[0] == entry[2].due]
            heapq.heapify(self._heap)
            self._stale = 0

    def run(self, now: float) -> None:
        """Tick every connection whose entry is due at ``now``: pings queued, expired connections closed."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, conn = heapq.heappop(heap)
            if due != conn.due:
                if conn.due == NEVER and self._stale:
                    self._stale -= 1
                continue  # superseded by an earlier entry that has already run, or closed
            conn.due = NEVER
            reason = conn.core.tick(now)
            if reason is not None:
                log.info("connection %s closed: %s", conn.id, reason)
                conn.close(reason)
            elif conn.core.has_output:  # a ping: written now if the stream is idle
                conn.flush()
            later = conn.core.next_due(now)
            if later is not None:
                conn.due = later
                heapq.heappush(heap, (later, next(self._order), conn))

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._at = None, NEVER

    def _arm(self, due: float) -> None:
        if self._grain > 0:
            due = math.ceil(due / self._grain) * self._grain
        if self._handle is not None and self._at <= due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test driving ``run`` by hand): nothing to arm
            return
        if self._handle is not None:
            self._handle.cancel()
        self._at = due
        self._handle = loop.call_later(max(0.0, due - self._clock()), self._fire)

    def _fire(self) -> None:
        self._handle, self._at = None, NEVER
        self.run(self._clock())
        if self._heap:
            self._arm(self._heap[0][0])
