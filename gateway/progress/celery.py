"""Job progress from Celery tasks: ``@app.task(bind=True, base=ProgressTask)``, then ``self.progress.step(...)``.

The job id is the Celery task id. The task's states follow Celery's own: Pending is PENDING, Processing is
STARTED then PROGRESS (``update_state``, with the percent, step and message as meta), Completed is SUCCESS,
Failed is FAILURE and Cancelled is REVOKED, so Celery's result backend agrees with the job record.

Configuration (``app.conf``): ``gateway_progress_url`` (the Redis URL of the job records; default: the broker's
URL when it is Redis), ``gateway_progress_hub`` (the hub's name or mount path, default ``/hubs/jobs``) and
``gateway_progress_lease`` (seconds, default 10: the heartbeat thread refreshes the record every lease / 3; give
the gateway's store the same lease, past which it marks a job with no heartbeat as Failed).

Cancel from a page: the gateway marks the record and calls the canceller from :func:`celery_canceller`.

* Cooperative (the default, ``terminate=False``): ``app.control.revoke(task_id)``. A task still queued never
  starts (Cancelled at once); a running task learns of the cancel from the reply to its next publish, and its next
  ``self.progress.step(...)`` raises :class:`~gateway.progress.JobCancelled`, which this class turns into
  Cancelled (Celery state REVOKED). Cleanup code in the task runs; the task ends at a step boundary.
* Terminate (``terminate=True``): ``revoke(task_id, terminate=True)`` kills the pool process running the task
  with SIGTERM. No cleanup runs in the task; the worker's main process publishes Cancelled.

A pool process that dies mid-task (killed, out of memory) is reported by the worker's main process as Failed
``worker lost: ...`` (once billiard notices and ``worker_lost_wait`` has passed: a few seconds); a whole worker
that dies, or a pool process killed by a hard time limit, stops its heartbeat, and the gateway's reaper marks
the job Failed ``worker lost: ...`` once the lease has passed.

A task that starts with a cancel already marked on its record (revoked while queued, by a revoke no running
worker heard) publishes Cancelled and does not run. ``self.retry(...)`` leaves the job Processing between tries
with no heartbeat: a countdown longer than the lease gets it reaped as Failed. A task called as a plain function
publishes to this process's in-memory store.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from celery import Celery, Task, signals, states
from celery.exceptions import Ignore, WorkerLostError

from .publisher import Job, JobCancelled, Progress, connect

log = logging.getLogger("gateway.progress.celery")

PROGRESS = "PROGRESS"
"""The Celery state of a task between steps (``AsyncResult(id).info`` holds percent, step and message)."""

_publishers: dict[tuple[str, str], Progress] = {}
_publishers_lock = threading.Lock()


def publisher_for(app: Celery) -> Progress:
    """The progress publisher of ``app`` (one per process and URL)."""
    url, hub = progress_url(app), str(app.conf.get("gateway_progress_hub") or "/hubs/jobs")
    with _publishers_lock:
        if (url, hub) not in _publishers:
            _publishers[url, hub] = connect(url, hub=hub)
        return _publishers[url, hub]


def progress_url(app: Celery) -> str:
    """``gateway_progress_url`` from the app's configuration, else its broker URL if that is Redis."""
    url = app.conf.get("gateway_progress_url") or str(app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise RuntimeError("set app.conf.gateway_progress_url to the Redis URL of the job records")
    return str(url)


class Heartbeat:
    """A daemon thread that refreshes a job's heartbeat every ``interval`` seconds until stopped."""

    def __init__(self, job: Job, interval: float) -> None:
        self._job, self._interval = job, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat:{job.job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._interval + 1)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._job.heartbeat()
            except Exception:  # a heartbeat never ends the task; the next one tries again
                log.warning("job %s: heartbeat failed", self._job.job_id, exc_info=True)


class TaskProgress:
    """``self.progress`` inside a task: the job handle, plus Celery's own state kept in step."""

    def __init__(self, task: ProgressTask, job: Job) -> None:
        self._task, self.job = task, job
        self.started = False

    @property
    def cancel_requested(self) -> bool:
        """Whether a cancel was asked for (read from the reply to the last publish)."""
        return bool(self.job.cancel_requested)

    def start(self, total: int | None = None, message: str = "") -> None:
        """Processing (Celery STARTED); called for you by the first ``step`` if the task does not."""
        if not self.started:
            self.started = True
            self.job.start(total, message or "Started")
            self._celery_state(states.STARTED, {"percent": 0, "step": 0, "message": message})

    def step(self, percent: float | None = None, message: str = "", *, step: int | None = None) -> None:
        """One step; raises ``JobCancelled`` when a cancel was asked for (cooperative cancel)."""
        self.start()
        self.job.step(percent, message, step=step)
        self._celery_state(PROGRESS, {"percent": percent, "step": step, "message": message})

    def _celery_state(self, state: str, meta: dict[str, Any]) -> None:
        if self._task.track_celery_state and not self._task.request.called_directly:
            self._task.update_state(state=state, meta=meta)


class ProgressTask(Task):  # type: ignore[misc]  # Celery ships no type information
    """A Celery task base whose ``self.progress`` publishes the task's progress to the pages watching it."""

    track_celery_state = True
    """Also record STARTED and PROGRESS in Celery's result backend (one more Redis write per step)."""

    _running: dict[str, TaskProgress]

    @property
    def progress(self) -> TaskProgress:
        """The progress handle of the task being run (its job id is the task id)."""
        running: dict[str, TaskProgress] = self.__dict__.setdefault("_running", {})
        found = running.get(self.request.id)
        if found is None:
            raise RuntimeError("self.progress is only available while the task runs")
        return found

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        handle = self._open()
        lease = float(self.app.conf.get("gateway_progress_lease") or 10.0)
        heartbeat = Heartbeat(handle.job, lease / 3)
        heartbeat.start()
        try:
            return self._run_job(handle, args, kwargs)
        finally:
            heartbeat.stop()

    def _open(self) -> TaskProgress:
        """The running task's handle: on the Redis records, or (a direct call, no task id) on this process's
        in-memory store, so that calling the task as a function works too."""
        if self.request.called_directly or self.request.id is None:
            self.request.id = self.request.id or f"direct-{uuid.uuid4().hex}"
            job = connect().job(self.request.id)
        else:
            job = publisher_for(self.app).job(str(self.request.id))
        handle = TaskProgress(self, job)
        self.__dict__.setdefault("_running", {})[str(self.request.id)] = handle
        return handle

    def _run_job(self, handle: TaskProgress, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            if handle.job.heartbeat():  # cancelled while queued (a revoke no worker heard), or over already
                raise JobCancelled(handle.job.job_id)
            result = self.run(*args, **kwargs)
        except JobCancelled:
            handle.job.cancelled()
            if self.track_celery_state and not self.request.called_directly:
                self.backend.mark_as_revoked(self.request.id, "cancelled", request=self.request)
            raise Ignore() from None
        handle.start()
        handle.job.complete(result)
        return result

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Failed, with the exception as the reason (also for a task that never called ``self.progress``)."""
        handle = self.__dict__.get("_running", {}).get(task_id)
        job = handle.job if handle is not None else publisher_for(self.app).job(task_id)
        job.fail(f"{type(exc).__name__}: {exc}")
        super().on_failure(exc, task_id, args, kwargs, einfo)

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """The task is over (after ``on_failure``): forget its handle."""
        self.__dict__.get("_running", {}).pop(task_id, None)
        super().after_return(status, retval, task_id, args, kwargs, einfo)


def _is_progress_task(sender: Any) -> bool:
    return isinstance(sender, ProgressTask)


def _worker_lost(sender: Any = None, task_id: str | None = None, exception: BaseException | None = None,
                 **_: Any) -> None:
    """In the worker's main process: a pool process died mid-task, so the task's job is Failed."""
    if _is_progress_task(sender) and task_id and isinstance(exception, WorkerLostError):
        publisher_for(sender.app).job(task_id).fail(f"worker lost: {exception}")


def _revoked(sender: Any = None, request: Any = None, terminated: bool = False, **_: Any) -> None:
    """In the worker's main process: a revoked task (never started, or terminated) is Cancelled."""
    if _is_progress_task(sender) and request is not None and request.id:
        publisher_for(sender.app).job(str(request.id)).cancelled()


signals.task_failure.connect(_worker_lost, weak=False)
signals.task_revoked.connect(_revoked, weak=False)


def celery_canceller(app: Celery, *, terminate: bool = False,
                     signal: str = "SIGTERM") -> Callable[[str], Awaitable[None]]:
    """The canceller a job store calls on a page's Cancel: revokes the task (see the module's docstring)."""
    import asyncio

    async def cancel(job_id: str) -> None:
        await asyncio.to_thread(app.control.revoke, job_id, terminate=terminate, signal=signal)
        log.info("job %s: revoke sent (terminate=%s)", job_id, terminate)

    return cancel
