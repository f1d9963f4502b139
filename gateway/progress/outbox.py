"""A publisher's side of one job, without I/O: its view of the record, the events no store has taken yet,
and when to try again after a failure.

The publisher numbers events from its own view (seq 1, 2 ... or after what a store told it). It hands
``batch()`` to a store, in order, and gives the store's ``Reply`` to ``settle``. Events wait here while
the store is unreachable: at most ``max_pending``; past that the oldest *steps* (Processing events) are
dropped first, never a state change; the store then finds a seq gap, calls it stale, and the rest are
renumbered after what it has. So a page sees a contiguous sequence whatever was lost during an outage.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from .record import DEFAULT_LIMITS, Event, JobRecord, JobState, RecordLimits, Reply, Verdict

MAX_PENDING = 10_000
BATCH = 100
"""Events a store is given at once."""
RETRY_MS = (250.0, 500.0, 1_000.0, 2_000.0, 5_000.0)
"""Waits before trying the store again after 1, 2, 3 ... failures in a row (ms)."""


class Outbox:
    """One job as one publisher sees it (see the module's docstring)."""

    def __init__(self, job_id: str, *, limits: RecordLimits = DEFAULT_LIMITS, max_pending: int = MAX_PENDING,
                 writer: str | None = None) -> None:
        self.record = JobRecord(job_id, limits=limits)
        self.writer = writer or secrets.token_hex(8)
        self.pending: deque[Event] = deque()
        self.max_pending = max_pending
        self.cancel_requested = False
        self.over = False
        """The store refused an event because the job is final (reaped, or ended by another writer)."""
        self.dropped = 0
        self.failures = 0
        self.retry_at = 0.0

    @property
    def job_id(self) -> str:
        return self.record.id

    def add(self, change: Callable[[JobRecord], tuple[JobRecord, Event]]) -> bool:
        """Apply a transition to this view and queue its event; False (nothing queued) once the job is over
        or the view is final."""
        if self.over or self.record.final:
            return False
        self.record, event = change(self.record)
        self.pending.append(event)
        if len(self.pending) > self.max_pending:
            self._drop_oldest_step()
        return True

    def _drop_oldest_step(self) -> None:
        for i in range(min(BATCH, self.max_pending // 2), len(self.pending)):  # not the batch in flight
            event = self.pending[i]
            if event["state"] == JobState.Processing and event["step"]:
                del self.pending[i]
                self.dropped += 1
                return

    def batch(self) -> list[Event]:
        """The next events to give the store, oldest first."""
        return [self.pending[i] for i in range(min(BATCH, len(self.pending)))]

    def due(self, now: float) -> bool:
        """Whether events wait and the store may be tried at ``now`` (ms)."""
        return bool(self.pending) and now >= self.retry_at

    def failed(self, now: float) -> None:
        """The store could not be reached at ``now``: wait a little longer each time before the next try."""
        self.retry_at = now + RETRY_MS[min(self.failures, len(RETRY_MS) - 1)]
        self.failures += 1

    def settle(self, reply: Reply) -> None:
        """Take the store's answer to ``batch()``."""
        self.failures, self.retry_at = 0, 0.0
        for verdict in reply.verdicts:
            if verdict in (Verdict.ok, Verdict.duplicate, Verdict.alive):
                self.pending.popleft()
            elif verdict is Verdict.final:
                self.pending.clear()
                self.over = True
                break
            else:  # stale
                self._renumber(reply.seq)
                break
        self.cancel_requested = reply.cancel or self.over

    def _renumber(self, after: int) -> None:
        self.pending = deque({**event, "seq": after + 1 + i} for i, event in enumerate(self.pending))
        self.record = replace(self.record, seq=after + len(self.pending))
