"""The demo's job queues on Celery and arq: ``POST /jobs`` enqueues there, and worker processes of that queue
(``gateway demo --queue celery|arq``, or started by hand) run the job and publish its progress to Redis.

Each is a ``JobQueue`` whose ``take`` is never called (the server runs no job worker of its own), with the
canceller the progress store calls on a page's Cancel.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..progress import Progress
from .jobs import DemoJob

TASK = "gateway.demo.run_job"
"""The name of the demo's Celery task (``gateway.demo.celery_app.run_job``)."""


class CeleryQueue:
    """Demo jobs as tasks of ``gateway.demo.celery_app``, on the Redis broker at ``url``; task id = job id."""

    def __init__(self, url: str, *, terminate: bool = False) -> None:
        from celery import Celery

        from ..progress.celery import celery_canceller

        self.app = Celery("gateway.demo.client", broker=url, backend=url, set_as_current=False)
        self.canceller = celery_canceller(self.app, terminate=terminate)

    async def put(self, job: DemoJob) -> None:
        await asyncio.to_thread(self.app.send_task, TASK, (job.steps, job.step_ms, job.fail_at), task_id=job.id)

    async def take(self) -> DemoJob:
        raise RuntimeError("Celery workers take the demo's jobs, not the server")

    async def size(self) -> int:
        """Tasks waiting in the broker's default queue."""
        def count() -> int:
            with self.app.connection_for_write() as connection:
                return int(connection.default_channel.client.llen(self.app.conf.task_default_queue))
        return await asyncio.to_thread(count)

    async def close(self) -> None:
        """Nothing: kombu's connection and producer pools are shared by every app of this process on the same
        broker URL, so closing them here would break another app (a restarted demo, a test's client)."""


class ArqQueue:
    """Demo jobs as ``run_job`` jobs of ``gateway.demo.arq_worker``, on the Redis at ``url``; arq job id = job id."""

    def __init__(self, url: str, progress: Progress) -> None:
        self.url, self.progress = url, progress
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def pool(self) -> Any:
        """The ``ArqRedis`` pool, made on first use (on the server's loop)."""
        async with self._lock:
            if self._pool is None:
                from arq import create_pool
                from arq.connections import RedisSettings

                self._pool = await create_pool(RedisSettings.from_dsn(self.url))
            return self._pool

    async def put(self, job: DemoJob) -> None:
        pool = await self.pool()
        await pool.enqueue_job("run_job", job.steps, job.step_ms, job.fail_at, _job_id=job.id)

    async def take(self) -> DemoJob:
        raise RuntimeError("arq workers take the demo's jobs, not the server")

    async def size(self) -> int:
        from arq.constants import default_queue_name

        return int(await (await self.pool()).zcard(default_queue_name))

    async def canceller(self, job_id: str) -> None:
        """Abort the job (see ``gateway.progress.arq.arq_canceller``)."""
        from ..progress.arq import arq_canceller

        await arq_canceller(await self.pool(), self.progress)(job_id)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
