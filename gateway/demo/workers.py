"""Job worker processes for ``gateway demo --queue celery|arq --job-workers N``: started in their own process
groups, so that stopping one stops its pool processes too."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import IO

QUEUES = ("inprocess", "celery", "arq")


def worker_argv(queue: str, index: int, concurrency: int, log_level: str = "info") -> list[str]:
    """The command of one worker process of ``queue`` (``celery`` or ``arq``)."""
    if queue == "celery":
        return [sys.executable, "-m", "celery", "-A", "gateway.demo.celery_app", "worker", "--pool", "prefork",
                "--concurrency", str(concurrency), "--loglevel", log_level.upper(),
                "-n", f"demo{index}-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    if queue == "arq":
        return [sys.executable, "-m", "arq", "gateway.demo.arq_worker.WorkerSettings"]
    raise ValueError(f"no worker processes for queue {queue!r}")


Processes = list[subprocess.Popen[bytes]]


def start_workers(queue: str, count: int, redis_url: str, *, lease: float | None = None, log_level: str = "info",
                  output: IO[bytes] | None = None, env: Mapping[str, str] | None = None) -> Processes:
    """``count`` job workers of ``queue`` on ``redis_url``: one Celery worker with ``count`` pool processes, or
    ``count`` arq worker processes."""
    extra = {"GATEWAY_REDIS_URL": redis_url, **({"GATEWAY_PROGRESS_LEASE": str(lease)} if lease else {})}
    environ = {**os.environ, **(env or {}), **extra}
    argvs = ([worker_argv(queue, 0, count, log_level)] if queue == "celery"
             else [worker_argv(queue, i, 1, log_level) for i in range(count)])
    return [subprocess.Popen(argv, env=environ, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
                             if output is not None else None, start_new_session=True) for argv in argvs]


def stop_workers(processes: list[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """SIGTERM each worker's process group (a warm shutdown), then SIGKILL what is left after ``grace`` s."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(5)
        _signal_group(process, signal.SIGKILL)  # pool processes left behind by a worker that exited


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
