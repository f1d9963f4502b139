"""Jobs: a store (in-process, or Redis for several processes) and workers that run jobs step by step,
publishing every change to the job's group."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger("gateway.demo")

STEP_MESSAGES = (
    "Checking seat availability FCO-JFK…", "Booking flight FCO-JFK…", "Reserving hotel in Manhattan…",
    "Charging card ending 4242…", "Issuing e-tickets…", "Booking airport transfer…",
    "Adding travel insurance…", "Sending confirmation e-mail…", "Syncing the itinerary to your calendar…",
    "Reconciling the payment…",
)


class JobState(StrEnum):
    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


FINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


@dataclass(slots=True)
class Job:
    id: str
    steps: int
    step_ms: int
    fail_at: int | None = None
    state: JobState = JobState.PENDING
    percent: int = 0
    step: int = 0
    message: str = "Queued"
    seq: int = 0
    error: str | None = None
    updated: float = 0.0
    created: float = field(default_factory=time.time)

    def event(self) -> dict[str, Any]:
        """The ``progress`` payload for the job's current state."""
        return {"jobId": self.id, "state": self.state.value, "percent": self.percent, "step": self.step,
                "message": self.message, "seq": self.seq, "error": self.error, "steps": self.steps,
                "ts": self.updated}

    def advance(self, state: JobState, percent: int, step: int, message: str, error: str | None = None) -> None:
        self.state, self.percent, self.step, self.message, self.error = state, percent, step, message, error
        self.seq += 1
        self.updated = round(time.time() * 1000, 1)


class JobStore(Protocol):
    """Where jobs, their step logs and the queue of jobs to run live."""

    async def create(self, job: Job) -> None: ...

    async def record(self, job: Job, event: dict[str, Any]) -> None: ...

    async def load(self, job_id: str) -> Job | None: ...

    async def log(self, job_id: str) -> list[dict[str, Any]]: ...

    async def cancel(self, job_id: str) -> bool: ...

    async def cancelled(self, job_id: str) -> bool: ...

    async def next(self) -> Job: ...

    async def queued(self) -> int:
        """How many jobs wait for a worker."""
        ...


class MemoryJobStore:
    """Jobs in this process (bounded: the oldest are forgotten)."""

    def __init__(self, max_jobs: int = 1_000) -> None:
        self.jobs: dict[str, Job] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self._cancelled: set[str] = set()
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._max = max_jobs

    async def create(self, job: Job) -> None:
        if len(self.jobs) >= self._max:
            oldest = next(iter(self.jobs))
            self.jobs.pop(oldest)
            self.logs.pop(oldest, None)
        self.jobs[job.id] = job
        self.logs.setdefault(job.id, [])
        self._queue.put_nowait(job)

    async def record(self, job: Job, event: dict[str, Any]) -> None:
        self.jobs[job.id] = job
        self.logs.setdefault(job.id, []).append(event)

    async def load(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def log(self, job_id: str) -> list[dict[str, Any]]:
        return list(self.logs.get(job_id, ()))

    async def cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.state in FINAL:
            return False
        self._cancelled.add(job_id)
        return True

    async def cancelled(self, job_id: str) -> bool:
        return job_id in self._cancelled

    async def next(self) -> Job:
        return await self._queue.get()

    async def queued(self) -> int:
        return self._queue.qsize()


Publish = Callable[[Job, dict[str, Any]], Awaitable[None]]


class Jobs:
    """Starts jobs, answers for their state, and runs them on ``workers`` tasks (0: another process does)."""

    def __init__(self, store: JobStore, publish: Publish, *, workers: int = 4) -> None:
        self.store = store
        self._publish = publish
        self._count = workers
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if not self._workers:
            self._workers = [asyncio.ensure_future(self.work()) for _ in range(self._count)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def submit(self, steps: int, step_ms: int, fail_at: int | None = None) -> Job:
        job = Job(secrets.token_hex(6), steps, step_ms, fail_at)
        job.advance(JobState.PENDING, 0, 0, "Queued, waiting for a worker")
        await self.store.record(job, job.event())
        await self.store.create(job)
        await self._publish(job, job.event())
        return job

    async def snapshot(self, job_id: str) -> dict[str, Any] | None:
        """The current state and the whole step log, for late subscribers and ``GET /jobs/{id}``."""
        job = await self.store.load(job_id)
        if job is None:
            return None
        return {**job.event(), "log": await self.store.log(job_id)}

    async def cancel(self, job_id: str) -> bool:
        return await self.store.cancel(job_id)

    async def work(self) -> None:
        """A worker: take jobs from the store and run them, forever."""
        while True:
            try:
                job = await self.store.next()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job worker: cannot take a job (%r); retrying in 1 s", exc)
                await asyncio.sleep(1)
                continue
            try:
                await self.run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s crashed", job.id)
                await self._advance(job, JobState.FAILED, job.percent, job.step, "Crashed", "internal error")

    async def _advance(self, job: Job, state: JobState, percent: int, step: int, message: str,
                       error: str | None = None) -> None:
        job.advance(state, percent, step, message, error)
        event = job.event()
        await self.store.record(job, event)
        await self._publish(job, event)

    async def run(self, job: Job) -> None:
        """Run one job through Processing to Completed, Failed or Cancelled."""
        messages = itertools.cycle(STEP_MESSAGES)
        for step in range(1, job.steps + 1):
            if await self.store.cancelled(job.id):
                await self._advance(job, JobState.CANCELLED, job.percent, step - 1, "Cancelled")
                return
            message = next(messages)
            await asyncio.sleep(job.step_ms / 1000)
            if job.fail_at is not None and step == job.fail_at:
                reason = f"Step {step} failed: the payment provider declined the card"
                await self._advance(job, JobState.FAILED, job.percent, step, message, reason)
                return
            await self._advance(job, JobState.PROCESSING, step * 100 // job.steps, step, message)
        await self._advance(job, JobState.COMPLETED, 100, job.steps, "Done: your trip is booked")


class RedisJobStore:
    """Jobs in Redis, so that any gateway process answers for them and a worker process runs them."""

    def __init__(self, url: str, prefix: str = "gw:demo") -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url, decode_responses=True, socket_timeout=30, socket_connect_timeout=5)
        self._prefix = prefix

    def _key(self, job_id: str, part: str = "") -> str:
        return f"{self._prefix}:job:{job_id}{part}"

    async def create(self, job: Job) -> None:
        await self._redis.lpush(f"{self._prefix}:queue", job.id)

    async def record(self, job: Job, event: dict[str, Any]) -> None:
        data = asdict(job)
        data["state"] = job.state.value
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(job.id), json.dumps(data), ex=86400)
            pipe.rpush(self._key(job.id, ":log"), json.dumps(event))
            pipe.expire(self._key(job.id, ":log"), 86400)
            await pipe.execute()

    async def load(self, job_id: str) -> Job | None:
        raw = await self._redis.get(self._key(job_id))
        if raw is None:
            return None
        data = json.loads(raw)
        data["state"] = JobState(data["state"])
        return Job(**data)

    async def log(self, job_id: str) -> list[dict[str, Any]]:
        return [json.loads(e) for e in await self._redis.lrange(self._key(job_id, ":log"), 0, -1)]

    async def cancel(self, job_id: str) -> bool:
        job = await self.load(job_id)
        if job is None or job.state in FINAL:
            return False
        await self._redis.set(self._key(job_id, ":cancel"), "1", ex=86400)
        return True

    async def cancelled(self, job_id: str) -> bool:
        return bool(await self._redis.exists(self._key(job_id, ":cancel")))

    async def next(self) -> Job:
        while True:
            popped = await self._redis.brpop([f"{self._prefix}:queue"], timeout=2)
            if popped is None:
                continue
            job = await self.load(str(popped[1]))
            if job is not None:
                return job

    async def queued(self) -> int:
        return int(await self._redis.llen(f"{self._prefix}:queue"))

    async def close(self) -> None:
        await self._redis.aclose()
