"""Where job records live, as the hub sees them: the interface, the reaper, and the in-process store.

A store takes events from publishers (``write``, by ``judge``'s rule), delivers each accepted one to the
job's group ``job:{id}`` of its hub, and answers the hub (``load``, ``snapshot``, ``tail``, ``wait``,
``cancel``). Its reaper fails a Processing job whose heartbeat is older than ``lease`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from ..backplane import HubClients
from .record import DEFAULT_LIMITS, Event, JobRecord, JobState, RecordLimits, Reply, Verdict, failed, judge

log = logging.getLogger("gateway.progress")

Canceller = Callable[[str], "Awaitable[Any] | Any"]
"""Called with a job id once a cancel is marked: a queue integration stops the task (revoke, abort)."""
LEASE = 10.0
REAPER = "reaper"


def job_group(job_id: str) -> str:
    """The group of a job's subscribers."""
    return f"job:{job_id}"


def wall_ms() -> float:
    return time.time() * 1000


class ProgressStore(Protocol):
    """What the hub and the reaper need of a store."""

    limits: RecordLimits
    canceller: Canceller | None

    async def write(self, job_id: str, writer: str, events: list[Event], cutoff: float = 0.0) -> Reply: ...

    async def beat(self, job_id: str) -> bool: ...

    async def load(self, job_id: str) -> JobRecord | None:
        """The record without its log; None for an unknown job."""
        ...

    async def snapshot(self, job_id: str) -> Event | None: ...

    async def tail(self, job_id: str, after: int) -> list[Event]:
        """The logged events with a seq above ``after``, oldest first."""
        ...

    def notice(self, job_id: str) -> asyncio.Event:
        """An event set at the job's next change (take it, read, then wait on it: no change is missed)."""
        ...

    def attached(self) -> bool:
        """Whether the store knows where to deliver (a MemoryStore needs ``attach``; Redis publishes)."""
        ...

    def attach(self, clients: HubClients) -> None: ...

    async def cancel(self, job_id: str) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def raise_if_cancelled() -> None:
    """Raise CancelledError if the running task was asked to stop: redis-py may swallow a cancel that reaches it
    mid-command, or turn it into its own error, and a loop that goes on would never end."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Reaper:
    """Fails the Processing jobs of a store whose heartbeat is older than ``lease`` seconds, every lease / 4."""

    def __init__(self, lease: float, now: Callable[[], Awaitable[float]],
                 stale: Callable[[float], Awaitable[list[JobRecord]]],
                 write: Callable[[str, str, list[Event], float], Awaitable[Reply]]) -> None:
        self.lease = lease
        self._now, self._stale, self._write = now, stale, write
        self._task: asyncio.Task[None] | None = None

    def ensure(self) -> None:
        """Run on the running loop, if not yet (called on each use of the store)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.reap()
            except Exception as exc:  # a store outage: try again at the next round
                log.warning("progress reaper: %r", exc)
            raise_if_cancelled()
            await asyncio.sleep(max(self.lease / 4, 0.05))

    async def reap(self) -> list[str]:
        """One round: the ids of the jobs failed."""
        now = await self._now()
        cutoff = now - self.lease * 1000
        reaped = []
        for record in await self._stale(cutoff):
            silent = (now - record.heartbeat) / 1000
            _, event = failed(record, now, f"worker lost: no heartbeat for {silent:.1f} s (lease {self.lease:g} s)")
            reply = await self._write(record.id, REAPER, [event], cutoff)
            if reply.verdicts and reply.verdicts[0] is Verdict.ok:
                log.warning("job %s: worker lost (no heartbeat for %.1f s); marked Failed", record.id, silent)
                reaped.append(record.id)
        return reaped

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def call_canceller(canceller: Canceller | None, job_id: str) -> None:
    if canceller is None:
        return
    try:
        result = canceller(job_id)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("job %s: the canceller failed", job_id)


class MemoryStore:
    """Records in this process (the embedded default), delivered through a Gateway's ``clients``.

    Thread-safe: a publisher in another thread (``progress.job`` in a thread pool) writes here, and the
    delivery runs on the event loop, in the order of the writes. At most ``max_jobs`` records are kept
    (the oldest go first).
    """

    def __init__(self, *, limits: RecordLimits = DEFAULT_LIMITS, lease: float = LEASE, max_jobs: int = 10_000,
                 clock: Callable[[], float] = wall_ms) -> None:
        self.limits = limits
        self.canceller: Canceller | None = None
        self.clock = clock
        self.max_jobs = max_jobs
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        self._writers: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._clients: HubClients | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outgoing: deque[Event] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self._changed: dict[str, asyncio.Event] = {}
        self.reaper = Reaper(lease, self._now, self._stale, self.write)

    def attach(self, clients: HubClients) -> None:
        """Deliver accepted events to the hub these ``clients`` belong to (a Gateway's ``clients``)."""
        self._clients = clients

    def attached(self) -> bool:
        return self._clients is not None

    def _use(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self.reaper.ensure()

    # --- writes ------------------------------------------------------------------------------------------

    def write_now(self, job_id: str, writer: str, events: list[Event], cutoff: float = 0.0) -> Reply:
        """``write`` for any thread, without waiting for the delivery."""
        verdicts: list[Verdict] = []
        with self._lock:
            record = self._records.get(job_id) or JobRecord(job_id, limits=self.limits)
            seen = self._writers.setdefault(job_id, {})
            for event in events:
                verdict = judge(record.seq, record.final, seen.get(writer, 0), int(event["seq"]))
                if verdict is Verdict.ok and cutoff and record.heartbeat >= cutoff:
                    verdict = Verdict.alive
                verdicts.append(verdict)
                if verdict is not Verdict.ok:
                    if verdict is Verdict.duplicate:
                        continue
                    break
                public = _public(event)
                record = replace(record.with_logged(public), heartbeat=self.clock())
                if event["state"] == JobState.Pending and event.get("owner") is not None:
                    record = replace(record, owner=event["owner"])
                seen[writer] = record.seq
                self._outgoing.append(public)
            self._keep(job_id, record)
        self._deliver(job_id)
        return Reply(tuple(verdicts), record.seq, record.cancel_requested)

    def _keep(self, job_id: str, record: JobRecord) -> None:
        self._records[job_id] = record
        self._records.move_to_end(job_id)
        while len(self._records) > self.max_jobs:
            old, _ = self._records.popitem(last=False)
            self._writers.pop(old, None)

    async def write(self, job_id: str, writer: str, events: list[Event], cutoff: float = 0.0) -> Reply:
        self._use()
        return self.write_now(job_id, writer, events, cutoff)

    def beat_now(self, job_id: str) -> bool:
        """Refresh the heartbeat of a running job; whether a cancel was requested (or the job is over)."""
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.final:
                return record is not None
            self._records[job_id] = replace(record, heartbeat=self.clock())
            return record.cancel_requested

    async def beat(self, job_id: str) -> bool:
        self._use()
        return self.beat_now(job_id)

    # --- delivery, on the loop ---------------------------------------------------------------------------

    def _deliver(self, job_id: str) -> None:
        loop = self._loop
        if loop is None:
            self._outgoing.clear()  # nobody has subscribed in this process yet
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._kick(job_id)
        else:
            loop.call_soon_threadsafe(self._kick, job_id)

    def _kick(self, job_id: str) -> None:
        changed = self._changed.pop(job_id, None)
        if changed is not None:
            changed.set()
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self._outgoing:
            event = self._outgoing.popleft()
            if self._clients is None:
                continue
            try:
                await self._clients.group(job_group(event["jobId"])).send("progress", event)
            except Exception:
                log.exception("job %s: progress delivery failed", event["jobId"])

    # --- reads -------------------------------------------------------------------------------------------

    async def load(self, job_id: str) -> JobRecord | None:
        self._use()
        record = self._records.get(job_id)
        return None if record is None else replace(record, log=())

    async def snapshot(self, job_id: str) -> Event | None:
        self._use()
        record = self._records.get(job_id)
        return None if record is None else record.snapshot()

    async def tail(self, job_id: str, after: int) -> list[Event]:
        record = self._records.get(job_id)
        return [] if record is None else [e for e in record.log if e["seq"] > after]

    def notice(self, job_id: str) -> asyncio.Event:
        self._use()
        return self._changed.setdefault(job_id, asyncio.Event())

    async def cancel(self, job_id: str) -> bool:
        """Mark a cancel on a job that is not final, then call the canceller; whether it was marked."""
        self._use()
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.final:
                return False
            self._records[job_id] = replace(record, cancel_requested=True)
        await call_canceller(self.canceller, job_id)
        return True

    # --- the reaper --------------------------------------------------------------------------------------

    async def _now(self) -> float:
        return self.clock()

    async def _stale(self, cutoff: float) -> list[JobRecord]:
        with self._lock:
            return [r for r in self._records.values() if r.state is JobState.Processing and r.heartbeat < cutoff]

    async def start(self) -> None:
        self._use()

    async def close(self) -> None:
        await self.reaper.close()
        if self._drainer is not None:
            with contextlib.suppress(Exception):
                await self._drainer


def _public(event: Event) -> Event:
    """The event as pages see it (without the owner a Pending event may carry to the store)."""
    if "owner" not in event:
        return event
    return {k: v for k, v in event.items() if k != "owner"}
