"""The demo's arq worker: ``arq gateway.demo.arq_worker.WorkerSettings`` runs the demo's jobs.

The queue and the job records share ``GATEWAY_REDIS_URL``; the job id is the arq job id.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from arq import func
from arq.connections import RedisSettings

from ..progress.arq import progress_job, startup
from .work import DONE, lease, plan, redis_url


@progress_job
async def run_job(ctx: dict[str, Any], steps: int, step_ms: int, fail_at: int | None = None) -> dict[str, Any]:
    """The demo's job, step by step; a cancel from the page aborts it."""
    progress = ctx["progress"]
    await progress.start(steps, "Started")
    for step, percent, message in plan(steps, fail_at):
        await asyncio.sleep(step_ms / 1000)
        await progress.step(percent, message, step=step)
    return {"steps": steps, "message": DONE}


async def on_startup(ctx: dict[str, Any]) -> None:
    await startup(ctx, redis_url(), lease())


class WorkerSettings:
    """arq's settings for the demo worker (a job runs once: a lost one is Failed, never run twice)."""

    functions: ClassVar[list[Any]] = [func(run_job, name="run_job", max_tries=1)]
    on_startup = on_startup
    redis_settings = RedisSettings.from_dsn(redis_url())
    allow_abort_jobs = True
    max_jobs = 10
    poll_delay = 0.1
    keep_result = 3600
