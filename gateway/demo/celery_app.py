"""The demo's Celery app: ``celery -A gateway.demo.celery_app worker`` runs the demo's jobs.

Broker, result backend and job records share ``GATEWAY_REDIS_URL``; the job id is the task id.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from ..progress.celery import ProgressTask
from .work import DONE, lease, plan, redis_url

app = Celery("gateway.demo", broker=redis_url(), backend=redis_url())
app.conf.update(
    gateway_progress_url=redis_url(), gateway_progress_lease=lease(), task_track_started=True,
    worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True, result_expires=86400,
    worker_hijack_root_logger=False, worker_lost_wait=1.0,  # a lost pool process is reported Failed after 1 s
)


@app.task(bind=True, base=ProgressTask, name="gateway.demo.run_job")  # type: ignore[untyped-decorator]
def run_job(self: ProgressTask, steps: int, step_ms: int, fail_at: int | None = None) -> dict[str, Any]:
    """The demo's job, step by step; a cancel from the page ends it at the next step."""
    self.progress.start(steps, "Started")
    for step, percent, message in plan(steps, fail_at):
        time.sleep(step_ms / 1000)
        self.progress.step(percent, message, step=step)
    return {"steps": steps, "message": DONE}
