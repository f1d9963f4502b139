"""An in-process job queue: a bounded worker pool runs jobs step by step and publishes progress."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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
    log: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    updated: float = 0.0

    def event(self) -> dict[str, Any]:
        """The ``progress`` payload for the job's current state."""
        return {"jobId": self.id, "state": self.state.value, "percent": self.percent, "step": self.step,
                "message": self.message, "seq": self.seq, "error": self.error, "steps": self.steps,
                "ts": self.updated}

    def snapshot(self) -> dict[str, Any]:
        """The current state and the whole step log, for late subscribers and ``GET /jobs/{id}``."""
        return {**self.event(), "log": list(self.log)}


Publish = Callable[[Job, dict[str, Any]], Awaitable[None]]


class JobQueue:
    """Queues jobs, runs at most ``workers`` at a time, and publishes every change."""

    def __init__(self, publish: Publish, *, workers: int = 4, max_jobs: int = 10_000) -> None:
        self.jobs: dict[str, Job] = {}
        self._publish = publish
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._count = workers
        self._max_jobs = max_jobs

    async def start(self) -> None:
        if not self._workers:
            self._workers = [asyncio.ensure_future(self._work()) for _ in range(self._count)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def submit(self, steps: int, step_ms: int, fail_at: int | None = None) -> Job:
        await self.start()
        if len(self.jobs) >= self._max_jobs:
            oldest = next(iter(self.jobs))
            self.jobs.pop(oldest)
        job = Job(secrets.token_hex(6), steps, step_ms, fail_at)
        self.jobs[job.id] = job
        await self._advance(job, JobState.PENDING, 0, 0, "Queued, waiting for a worker")
        self._queue.put_nowait(job)
        return job

    def cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.state in FINAL:
            return False
        job.state = JobState.CANCELLED  # the worker publishes it at its next step
        return True

    async def _advance(self, job: Job, state: JobState, percent: int, step: int, message: str,
                       error: str | None = None) -> None:
        job.state, job.percent, job.step, job.message, job.error = state, percent, step, message, error
        job.seq += 1
        job.updated = round(time.time() * 1000, 1)
        event = job.event()
        job.log.append(event)
        await self._publish(job, event)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self.run(job)
            except Exception:
                log.exception("job %s crashed", job.id)
                await self._advance(job, JobState.FAILED, job.percent, job.step, "Crashed", "internal error")

    @staticmethod
    def _cancelled(job: Job) -> bool:
        return job.state is JobState.CANCELLED

    async def run(self, job: Job) -> None:
        """Run one job through Processing to Completed, Failed or Cancelled."""
        if job.state is JobState.CANCELLED:
            await self._advance(job, JobState.CANCELLED, 0, 0, "Cancelled before it started")
            return
        messages = itertools.cycle(STEP_MESSAGES)
        for step in range(1, job.steps + 1):
            message = next(messages)
            await asyncio.sleep(job.step_ms / 1000)
            if self._cancelled(job):
                await self._advance(job, JobState.CANCELLED, job.percent, step - 1, "Cancelled")
                return
            if job.fail_at is not None and step == job.fail_at:
                reason = f"Step {step} failed: the payment provider declined the card"
                await self._advance(job, JobState.FAILED, job.percent, step, message, reason)
                return
            await self._advance(job, JobState.PROCESSING, step * 100 // job.steps, step, message)
        await self._advance(job, JobState.COMPLETED, 100, job.steps, "Done: your trip is booked")
