"""The demo's job runner: a queue of demo jobs (steps, step_ms, fail_at), in this process or in Redis, and
workers that run them step by step, publishing through ``gateway.progress``."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
from dataclasses import asdict, dataclass
from typing import Protocol

from ..progress import JobCancelled, Progress

log = logging.getLogger("gateway.demo")

STEP_MESSAGES = (
    "Checking seat availability FCO-JFK…", "Booking flight FCO-JFK…", "Reserving hotel in Manhattan…",
    "Charging card ending 4242…", "Issuing e-tickets…", "Booking airport transfer…",
    "Adding travel insurance…", "Sending confirmation e-mail…", "Syncing the itinerary to your calendar…",
    "Reconciling the payment…",
)
CHECK_EVERY = 0.5
"""Seconds between a running job's heartbeats (which also read a cancel) while it sleeps through a step."""


@dataclass(frozen=True, slots=True)
class DemoJob:
    """What ``POST /jobs`` asked for."""

    id: str
    steps: int
    step_ms: int
    fail_at: int | None = None


class JobQueue(Protocol):
    """Demo jobs waiting for a worker."""

    async def put(self, job: DemoJob) -> None: ...

    async def take(self) -> DemoJob: ...

    async def size(self) -> int: ...

    async def close(self) -> None: ...


class MemoryQueue:
    """Jobs waiting in this process."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[DemoJob] = asyncio.Queue()

    async def put(self, job: DemoJob) -> None:
        self._queue.put_nowait(job)

    async def take(self) -> DemoJob:
        return await self._queue.get()

    async def size(self) -> int:
        return self._queue.qsize()

    async def close(self) -> None:
        return None


class RedisQueue:
    """Jobs waiting in Redis, for workers in any process (``gateway worker``)."""

    def __init__(self, url: str, key: str = "gw:demo:queue") -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=30, socket_connect_timeout=5)
        self._key = key

    async def put(self, job: DemoJob) -> None:
        await self._redis.lpush(self._key, json.dumps(asdict(job)))

    async def take(self) -> DemoJob:
        while True:
            popped = await self._redis.brpop([self._key], timeout=2)
            if popped is not None:
                return DemoJob(**json.loads(popped[1]))

    async def size(self) -> int:
        return int(await self._redis.llen(self._key))

    async def close(self) -> None:
        await self._redis.aclose()


class Runner:
    """Starts demo jobs (Pending, queued) and runs them on ``workers`` tasks (0: another process does)."""

    def __init__(self, queue: JobQueue, progress: Progress, *, workers: int = 4) -> None:
        self.queue, self.progress = queue, progress
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

    async def submit(self, steps: int, step_ms: int, fail_at: int | None = None) -> DemoJob:
        job = DemoJob(secrets.token_hex(6), steps, step_ms, fail_at)
        await self.progress.ajob(job.id).create("Queued, waiting for a worker", total=steps)
        await self.queue.put(job)
        return job

    async def work(self) -> None:
        """A worker: take jobs from the queue and run them, forever."""
        while True:
            try:
                job = await self.queue.take()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job worker: cannot take a job (%r); retrying in 1 s", exc)
                await asyncio.sleep(1)
                continue
            await self.run(job)

    async def run(self, job: DemoJob) -> None:
        """Run one job through Processing to Completed, Failed or Cancelled."""
        handle = self.progress.ajob(job.id)
        try:
            if await handle.heartbeat():
                raise JobCancelled(job.id)
            messages = itertools.cycle(STEP_MESSAGES)
            for step in range(1, job.steps + 1):
                message = next(messages)
                await self._sleep(handle.heartbeat, job.step_ms / 1000)
                if job.fail_at is not None and step == job.fail_at:
                    await handle.fail(f"Step {step} failed: the payment provider declined the card", message)
                    return
                await handle.step(step * 100 // job.steps, message, step=step)
            await handle.complete(None, "Done: your trip is booked")
        except JobCancelled:
            await handle.cancelled()
        except Exception:
            log.exception("job %s crashed", job.id)
            await handle.fail("internal error", "Crashed")

    @staticmethod
    async def _sleep(beat: _Beat, seconds: float) -> None:
        """Sleep through a step, with a heartbeat (and a look for a cancel) every CHECK_EVERY seconds."""
        while seconds > 0:
            await asyncio.sleep(min(seconds, CHECK_EVERY))
            seconds -= CHECK_EVERY
            if seconds > 0 and await beat():
                raise JobCancelled("cancel requested")


class _Beat(Protocol):
    async def __call__(self) -> bool: ...
