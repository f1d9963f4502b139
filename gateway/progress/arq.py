"""Job progress from arq jobs: decorate the job with ``@progress_job``, then ``await ctx["progress"].step(...)``.

The job id is the arq job id. Add :func:`startup` to the worker's ``on_startup`` (or set ``ctx["gateway_progress"]``
to a publisher yourself) and set ``allow_abort_jobs = True`` in ``WorkerSettings`` so a page can cancel::

    @progress_job
    async def report(ctx, rows):
        for i in range(rows):
            ...
            await ctx["progress"].step(100 * (i + 1) // rows, f"row {i + 1}")
        return {"rows": rows}

A heartbeat task refreshes the record every lease / 3 while the job runs (``ctx["gateway_progress_lease"]``,
default 10 s); the gateway marks a job whose worker stopped beating for longer than the lease as Failed
``worker lost: ...``. An exception ends the job Failed, with the exception as the reason.

Cancel from a page: the gateway marks the record and calls the canceller from :func:`arq_canceller`. It asks arq
to abort the job: a running job's task is cancelled at its next ``await`` (``CancelledError``, turned into
Cancelled here), and a job still queued is taken off the queue and Cancelled at once. A job also stops at its
next ``step`` when the reply to a publish says a cancel was asked for (``JobCancelled``), and does not start
when its record already says so. A job interrupted by its worker's shutdown (no cancel asked for) is Failed
``worker stopped: ...``; give arq functions ``max_tries=1`` so that a lost job is not run a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from arq.typing import WorkerCoroutine

from .publisher import AsyncJob, JobCancelled, Progress, connect

log = logging.getLogger("gateway.progress.arq")

PUBLISHER = "gateway_progress"
LEASE = "gateway_progress_lease"
T = TypeVar("T")
JobFunction = Callable[..., Awaitable[T]]


async def startup(ctx: dict[str, Any], url: str | None = None, lease: float = 10.0, hub: str = "/hubs/jobs") -> None:
    """An ``on_startup`` step: the publisher of this worker (``url``, else ``GATEWAY_PROGRESS_URL``) for the hub
    ``hub``, and the heartbeat lease (give the gateway's store the same)."""
    ctx[PUBLISHER] = connect(url or os.environ["GATEWAY_PROGRESS_URL"], hub=hub)
    ctx[LEASE] = lease


class JobProgress:
    """``ctx["progress"]`` inside a job: the async job handle; ``start`` is implied by the first ``step``."""

    def __init__(self, job: AsyncJob) -> None:
        self.job = job
        self.started = False

    @property
    def cancel_requested(self) -> bool:
        """Whether a cancel was asked for (read from the reply to the last publish)."""
        return bool(self.job.cancel_requested)

    async def start(self, total: int | None = None, message: str = "") -> None:
        """Processing; called for you by the first ``step`` if the job does not."""
        if not self.started:
            self.started = True
            await self.job.start(total, message or "Started")

    async def step(self, percent: float | None = None, message: str = "", *, step: int | None = None) -> None:
        """One step; raises ``JobCancelled`` when a cancel was asked for (cooperative cancel)."""
        await self.start()
        await self.job.step(percent, message, step=step)


async def _beat(job: AsyncJob, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await job.heartbeat()
        except Exception:  # a heartbeat never ends the job; the next one tries again
            log.warning("job %s: heartbeat failed", job.job_id, exc_info=True)


_from_env: dict[str, Progress] = {}


def _publisher(ctx: dict[str, Any]) -> Progress:
    """The worker's publisher: set by :func:`startup`, else made once from ``GATEWAY_PROGRESS_URL``."""
    publisher: Progress | None = ctx.get(PUBLISHER)
    if publisher is not None:
        return publisher
    url = os.environ.get("GATEWAY_PROGRESS_URL")
    if not url:
        raise RuntimeError("add gateway.progress.arq.startup to on_startup, or set GATEWAY_PROGRESS_URL")
    if url not in _from_env:
        _from_env[url] = connect(url)
    return _from_env[url]


def progress_job(func: JobFunction[T]) -> WorkerCoroutine:
    """Give an arq job function ``ctx["progress"]`` and publish its end: Completed, Failed or Cancelled."""

    @functools.wraps(func)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> T | None:
        publisher = _publisher(ctx)
        handle = JobProgress(publisher.ajob(str(ctx["job_id"])))
        beat = asyncio.ensure_future(_beat(handle.job, float(ctx.get(LEASE, 10.0)) / 3))
        try:
            return await _run(func, handle, {**ctx, "progress": handle}, args, kwargs)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    return cast(WorkerCoroutine, run)


async def _run(func: JobFunction[T], handle: JobProgress, ctx: dict[str, Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> T | None:
    try:
        if await handle.job.heartbeat():  # cancelled before it started, or over already
            raise JobCancelled(handle.job.job_id)
        result = await func(ctx, *args, **kwargs)
    except JobCancelled:
        await handle.job.cancelled()
        return None
    except asyncio.CancelledError:  # arq's abort, or the worker stopping: the record's cancel mark tells which
        await asyncio.shield(_interrupted(handle.job))
        raise
    except Exception as exc:
        await handle.job.fail(f"{type(exc).__name__}: {exc}")
        raise
    await handle.start()
    await handle.job.complete(result)
    return result


async def _interrupted(job: AsyncJob) -> None:
    """Cancelled if a cancel was asked for (an abort), else Failed: the worker stopped under the job."""
    if job.cancel_requested or await job.heartbeat():
        await job.cancelled()
    else:
        await job.fail("worker stopped: the job was interrupted")


def arq_canceller(redis: Any, publisher: Progress, *, queue_name: str | None = None,
                  ) -> Callable[[str], Awaitable[None]]:
    """The canceller a job store calls on a page's Cancel: aborts the arq job (``redis``: an ``ArqRedis``)."""
    from arq.constants import abort_jobs_ss, default_queue_name, in_progress_key_prefix
    from arq.utils import timestamp_ms

    queue = queue_name or default_queue_name

    async def cancel(job_id: str) -> None:
        await redis.zadd(abort_jobs_ss, {job_id: timestamp_ms()})
        if await _dequeue(redis, queue, in_progress_key_prefix + job_id, job_id):
            await publisher.ajob(job_id).cancelled()  # it will never start: nobody else will say so
        log.info("job %s: abort sent", job_id)

    return cancel


async def _dequeue(redis: Any, queue: str, in_progress: str, job_id: str) -> bool:
    """Take a job that has not started off the queue; False if it runs (or ran) already."""
    from redis.exceptions import WatchError

    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(in_progress)
            if await pipe.exists(in_progress):
                return False
            pipe.multi()
            pipe.zrem(queue, job_id)
            removed = await pipe.execute()
        except WatchError:
            return False
    return bool(removed[0])
