"""Background-job progress, from any process to every page that waits for it.

In a task: ``progress = connect(url)`` (``None``: this process's in-memory store; ``redis://...``: the
Redis record and backplane), ``job = progress.job(job_id)`` (or ``ajob`` in asyncio code), then
``job.start(total)``, ``job.step(percent, message)``, ``job.complete(result)`` / ``job.fail(error)`` /
``job.cancelled()``. On the server: ``Gateway(ProgressHub.bind(store), name="jobs")``; pages call
``Subscribe(jobId)`` (snapshot, then ``progress`` calls), ``Watch(jobId)``, ``Cancel(jobId)``.
"""

from .hub import ProgressHub
from .outbox import Outbox
from .publisher import AsyncJob, Job, JobCancelled, Progress, connect, local_store
from .record import FINAL, Event, JobRecord, JobState, RecordLimits, TransitionError
from .store import MemoryStore, ProgressStore, job_group

__all__ = [
    "FINAL", "AsyncJob", "Event", "Job", "JobCancelled", "JobRecord", "JobState", "MemoryStore", "Outbox", "Progress",
    "ProgressHub", "ProgressStore", "RecordLimits", "TransitionError", "connect", "job_group", "local_store",
]


def __getattr__(name: str) -> object:
    """``RedisStore`` and ``RedisWriter`` import redis-py only when asked for."""
    if name in ("RedisStore", "RedisWriter"):
        from . import redis

        return getattr(redis, name)
    raise AttributeError(name)
