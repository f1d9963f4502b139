"""Real job-queue worker processes (Celery, arq) against a real redis-server, for the progress suites.

Every process runs in its own process group on 127.0.0.1, logs to a temporary file, and is stopped (the whole
group) by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from gateway.demo.workers import start_workers, stop_workers

LEASE = 3.0  # seconds: a killed worker's job turns Failed within this (plus the reaper's tick)


class Workers:
    """The worker processes of one queue; ``kill()`` SIGKILLs them all, pool processes included."""

    def __init__(self, queue: str, count: int, redis_url: str, lease: float = LEASE) -> None:
        self.queue, self.redis_url = queue, redis_url
        self.log = Path(tempfile.mkstemp(prefix=f"gw-{queue}-worker-", suffix=".log")[1])
        with self.log.open("wb") as output:
            self.processes = start_workers(queue, count, redis_url, lease=lease, log_level="info", output=output,
                                           env={"PYTHONPATH": os.environ.get("PYTHONPATH", "")})

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a {self.queue} worker exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {self.queue} workers did not start:\n{self.tail()}")
            time.sleep(0.1)

    def ready(self) -> bool:
        if self.queue == "celery":
            return " ready." in self.log.read_text(errors="replace")
        client = redis.Redis.from_url(self.redis_url)
        try:
            return bool(client.exists("arq:queue:health-check"))
        finally:
            client.close()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL every worker process group: no handler runs, no heartbeat follows."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for process in self.processes:
            process.wait(5)

    def stop(self) -> None:
        stop_workers(self.processes, grace=5.0)
        with contextlib.suppress(OSError):
            self.log.unlink()


@contextlib.contextmanager
def running(queue: str, count: int, redis_url: str, lease: float = LEASE) -> Iterator[Workers]:
    workers = Workers(queue, count, redis_url, lease)
    try:
        workers.wait_ready()
        yield workers
    finally:
        workers.stop()


def queue_fixtures(queue: str, workers: int = 2) -> tuple[Any, Any, Any]:
    """The module fixtures of a queue suite: a redis-server, the demo serving ``queue``'s jobs hub, and
    ``workers`` worker processes of that queue (``redis_url, live, workers = queue_fixtures("arq")``)."""
    import shutil

    import pytest
    from live import serve
    from test_backplane_redis import RedisServer

    from gateway.demo.app import create_app

    @pytest.fixture(scope="module")
    def redis_url() -> Iterator[str]:
        server = RedisServer()
        server.start()
        yield server.url
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)

    @pytest.fixture(scope="module")
    def live(redis_url: str) -> Iterator[Any]:
        with serve(create_app(redis_url=redis_url, queue=queue, job_workers=0, lease=LEASE)) as server:
            yield server

    @pytest.fixture(scope="module")
    def started(redis_url: str, live: Any) -> Iterator[Workers]:
        with running(queue, workers, redis_url) as found:
            yield found

    return redis_url, live, started
