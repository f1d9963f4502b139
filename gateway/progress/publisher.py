"""Publishing progress from any process: ``progress = connect(url)``, ``job = progress.job(job_id)``.

``job`` (sync, for Celery and threads) and ``ajob`` (asyncio, for arq and in-process runners) offer the
same calls: ``create``, ``start``, ``step``, ``complete``, ``fail``, ``cancelled`` and ``heartbeat``.
Publishing never raises into the task: when the store cannot be reached the events wait (bounded, see
``Outbox``) and go, in order and with their seq, at the next publish or from a retry timer. ``step``
raises ``JobCancelled`` once a cancel was requested (read from the reply of the last publish: no extra
round trip), unless the handle was made with ``raise_on_cancel=False``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from .outbox import Outbox
from .record import (
    DEFAULT_LIMITS,
    Event,
    JobRecord,
    RecordLimits,
    Reply,
    cancelled,
    completed,
    created,
    failed,
    started,
    stepped,
)
from .store import MemoryStore, wall_ms

log = logging.getLogger("gateway.progress")

ROUNDS = 300
"""Store round trips one flush may take (a backlog of 10,000 events is 100 batches)."""
RETRY_EVERY = 0.25
"""Seconds between the sync publisher's retries while events wait."""

Change = Callable[[JobRecord], tuple[JobRecord, Event]]


class JobCancelled(Exception):
    """A cancel was requested for the job (or it ended elsewhere): stop, then call ``cancelled()``."""


class SyncSink(Protocol):
    def write(self, job_id: str, writer: str, events: list[Event], cutoff: float = 0.0) -> Reply: ...

    def beat(self, job_id: str) -> bool: ...


class AsyncSink(Protocol):
    async def write(self, job_id: str, writer: str, events: list[Event], cutoff: float = 0.0) -> Reply: ...

    async def beat(self, job_id: str) -> bool: ...


class _MemorySync:
    """A MemoryStore as a sync sink (its writes never wait)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def write(self, job_id: str, writer: str, events: list[Event], cutoff: float = 0.0) -> Reply:
        return self.store.write_now(job_id, writer, events, cutoff)

    def beat(self, job_id: str) -> bool:
        return self.store.beat_now(job_id)


def _owned(change: Change, owner: str | None) -> Change:
    def apply(record: JobRecord) -> tuple[JobRecord, Event]:
        nxt, event = change(record)
        return nxt, event if owner is None else {**event, "owner": owner}
    return apply


class _Handle:
    """What both kinds of handle share: the transitions, as changes for the outbox."""

    def __init__(self, outbox: Outbox, clock: Callable[[], float], raise_on_cancel: bool) -> None:
        self.outbox, self.clock, self.raise_on_cancel = outbox, clock, raise_on_cancel

    @property
    def job_id(self) -> str:
        return self.outbox.job_id

    @property
    def cancel_requested(self) -> bool:
        """Whether a cancel was requested (or the job ended elsewhere), as the last publish's reply said."""
        return self.outbox.cancel_requested

    @property
    def waiting(self) -> int:
        """Events no store has taken yet (an outage holds them here)."""
        return len(self.outbox.pending)

    def _create(self, message: str, total: int | None, owner: str | None) -> Change:
        return _owned(lambda r: created(r, message, self.clock(), total), owner)

    def _start(self, total: int | None, message: str) -> Change:
        return lambda r: started(r, message, self.clock(), total)

    def _step(self, percent: float | None, message: str, step: int | None) -> Change:
        return lambda r: stepped(r, self.clock(), percent, message, step)

    def _complete(self, result: Any, message: str) -> Change:
        return lambda r: completed(r, self.clock(), result, message)

    def _fail(self, error: object, message: str | None) -> Change:
        return lambda r: failed(r, self.clock(), error, message)

    def _cancelled(self, message: str) -> Change:
        return lambda r: cancelled(r, self.clock(), message)

    def _check(self) -> None:
        if self.raise_on_cancel and self.outbox.cancel_requested:
            raise JobCancelled(self.job_id)


class Job(_Handle):
    """A job's publisher for sync code (a Celery task, a thread). Safe to share between threads."""

    def __init__(self, progress: Progress, outbox: Outbox, sink: SyncSink, raise_on_cancel: bool) -> None:
        super().__init__(outbox, progress.clock, raise_on_cancel)
        self._progress, self._sink = progress, sink
        self._state = threading.Lock()
        self._sending = threading.Lock()

    def create(self, message: str = "Queued", *, total: int | None = None, owner: str | None = None) -> None:
        """Record the job as Pending (the application does, when it queues the job), with its owner."""
        self._publish(self._create(message, total, owner))

    def start(self, total: int | None = None, message: str = "Started") -> None:
        self._publish(self._start(total, message))

    def step(self, percent: float | None = None, message: str = "", *, step: int | None = None) -> None:
        """One step done; raises JobCancelled when a cancel was requested (``raise_on_cancel``)."""
        self._publish(self._step(percent, message, step))
        self._check()

    def complete(self, result: Any = None, message: str = "Completed") -> None:
        self._publish(self._complete(result, message))

    def fail(self, error: object, message: str | None = None) -> None:
        self._publish(self._fail(error, message))

    def cancelled(self, message: str = "Cancelled") -> None:
        self._publish(self._cancelled(message))

    def heartbeat(self) -> bool:
        """Tell the store this job's worker is alive; whether a cancel was requested."""
        try:
            self.outbox.cancel_requested |= self._sink.beat(self.job_id)
        except Exception as exc:
            log.warning("job %s: heartbeat failed (%r)", self.job_id, exc)
        return self.outbox.cancel_requested

    def _publish(self, change: Change) -> None:
        with self._state:
            self.outbox.add(change)
        self.flush()

    def flush(self) -> None:
        """Give the store what waits, if it may be tried now; never raises, never waits for another flush."""
        if not self._sending.acquire(blocking=False):
            self._progress.retry_later(self)
            return
        try:
            for _ in range(ROUNDS):
                with self._state:
                    now = self.clock()
                    if not self.outbox.due(now):
                        break
                    batch = self.outbox.batch()
                try:
                    reply = self._sink.write(self.job_id, self.outbox.writer, batch)
                except Exception as exc:
                    with self._state:
                        self.outbox.failed(now)
                    _unreachable(self.job_id, self.outbox, exc)
                    break
                with self._state:
                    self.outbox.settle(reply)
        finally:
            self._sending.release()
        if self.outbox.pending:
            self._progress.retry_later(self)


class AsyncJob(_Handle):
    """A job's publisher for asyncio code (an arq job, an in-process runner)."""

    def __init__(self, outbox: Outbox, sink: AsyncSink, clock: Callable[[], float], raise_on_cancel: bool) -> None:
        super().__init__(outbox, clock, raise_on_cancel)
        self._sink = sink
        self._sending = asyncio.Lock()
        self._retry: asyncio.TimerHandle | None = None

    async def create(self, message: str = "Queued", *, total: int | None = None, owner: str | None = None) -> None:
        """Record the job as Pending (the application does, when it queues the job), with its owner."""
        await self._publish(self._create(message, total, owner))

    async def start(self, total: int | None = None, message: str = "Started") -> None:
        await self._publish(self._start(total, message))

    async def step(self, percent: float | None = None, message: str = "", *, step: int | None = None) -> None:
        """One step done; raises JobCancelled when a cancel was requested (``raise_on_cancel``)."""
        await self._publish(self._step(percent, message, step))
        self._check()

    async def complete(self, result: Any = None, message: str = "Completed") -> None:
        await self._publish(self._complete(result, message))

    async def fail(self, error: object, message: str | None = None) -> None:
        await self._publish(self._fail(error, message))

    async def cancelled(self, message: str = "Cancelled") -> None:
        await self._publish(self._cancelled(message))

    async def heartbeat(self) -> bool:
        """Tell the store this job's worker is alive; whether a cancel was requested."""
        try:
            self.outbox.cancel_requested |= await self._sink.beat(self.job_id)
        except Exception as exc:
            log.warning("job %s: heartbeat failed (%r)", self.job_id, exc)
        return self.outbox.cancel_requested

    async def _publish(self, change: Change) -> None:
        self.outbox.add(change)
        await self.flush()

    async def flush(self) -> None:
        """Give the store what waits, if it may be tried now; a flush under way takes new events along."""
        if self._sending.locked():
            return
        async with self._sending:
            for _ in range(ROUNDS):
                now = self.clock()
                if not self.outbox.due(now):
                    break
                try:
                    reply = await self._sink.write(self.job_id, self.outbox.writer, self.outbox.batch())
                except Exception as exc:
                    self.outbox.failed(now)
                    _unreachable(self.job_id, self.outbox, exc)
                    break
                self.outbox.settle(reply)
        if self.outbox.pending:
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._retry is not None:
            return
        delay = max(self.outbox.retry_at - self.clock(), 0.0) / 1000 + 0.01

        def fire() -> None:
            self._retry = None
            asyncio.ensure_future(self.flush())

        self._retry = asyncio.get_running_loop().call_later(delay, fire)


def _unreachable(job_id: str, outbox: Outbox, exc: Exception) -> None:
    if outbox.failures == 1:
        log.warning("job %s: the progress store is unreachable (%r); %d event(s) wait", job_id, exc,
                    len(outbox.pending))


class Progress:
    """Makes job handles on one store (see ``connect``)."""

    def __init__(self, sync_sink: Callable[[], SyncSink], async_sink: Callable[[], AsyncSink], *,
                 limits: RecordLimits = DEFAULT_LIMITS, clock: Callable[[], float] = wall_ms,
                 close: Callable[[], None] = lambda: None) -> None:
        self.limits, self.clock = limits, clock
        self._make_sync, self._make_async, self._close = sync_sink, async_sink, close
        self._sync: SyncSink | None = None
        self._async: AsyncSink | None = None
        self._waiting: set[Job] = set()
        self._lock = threading.Lock()
        self._retrier: threading.Thread | None = None

    def job(self, job_id: str, *, raise_on_cancel: bool = True) -> Job:
        """A sync handle on job ``job_id``."""
        if self._sync is None:
            self._sync = self._make_sync()
        return Job(self, Outbox(_job_id(job_id), limits=self.limits), self._sync, raise_on_cancel)

    def ajob(self, job_id: str, *, raise_on_cancel: bool = True) -> AsyncJob:
        """An asyncio handle on job ``job_id``."""
        if self._async is None:
            self._async = self._make_async()
        return AsyncJob(Outbox(_job_id(job_id), limits=self.limits), self._async, self.clock, raise_on_cancel)

    def retry_later(self, job: Job) -> None:
        """Have the retry thread flush ``job`` until nothing waits."""
        with self._lock:
            self._waiting.add(job)
            if self._retrier is None or not self._retrier.is_alive():
                self._retrier = threading.Thread(target=self._retry, name="gateway-progress-retry", daemon=True)
                self._retrier.start()

    def _retry(self) -> None:
        while True:
            time.sleep(RETRY_EVERY)
            with self._lock:
                jobs = list(self._waiting)
            for job in jobs:
                job.flush()
            with self._lock:
                self._waiting = {job for job in self._waiting if job.outbox.pending}
                if not self._waiting:
                    self._retrier = None
                    return

    def close(self) -> None:
        self._close()


def _job_id(job_id: object) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise TypeError(f"a job id is a non-empty string, not {job_id!r}")
    return job_id


_LOCAL: MemoryStore | None = None


def local_store() -> MemoryStore:
    """This process's in-memory store: the default of ``ProgressHub`` and of ``connect()``."""
    global _LOCAL
    if _LOCAL is None:
        _LOCAL = MemoryStore()
    return _LOCAL


def connect(url: str | None = None, *, hub: str = "/hubs/jobs", prefix: str = "gw",
            limits: RecordLimits = DEFAULT_LIMITS, store: MemoryStore | None = None) -> Progress:
    """A publisher: ``None`` for this process's in-memory store (or ``store``), ``redis://...`` for the Redis
    record and the Redis backplane of the hub ``hub`` (a Gateway's name, or its mount path) under ``prefix``."""
    if url is None:
        memory = store or local_store()
        return Progress(lambda: _MemorySync(memory), lambda: memory, limits=memory.limits)
    from .redis import RedisStore, RedisWriter

    writers: list[RedisWriter] = []

    def sync_sink() -> SyncSink:
        writers.append(RedisWriter(url, hub=hub, prefix=prefix, limits=limits))
        return writers[-1]

    def close() -> None:
        for writer in writers:
            writer.close()

    return Progress(sync_sink, lambda: RedisStore(url, hub=hub, prefix=prefix, limits=limits), limits=limits,
                    close=close)
