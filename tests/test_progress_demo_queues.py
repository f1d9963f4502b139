"""``gateway demo --redis URL --queue celery|arq --job-workers N``: the demo starts N workers of the queue, its
jobs run on them, and the workers are gone once the demo exits."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest
from live import free_port, request, wait_until
from test_backplane_redis import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (scripts/setup.sh)")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer()
    server.start()
    yield server.url
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def job_state(port: int, job_id: str) -> str:
    reply = request(port, "GET", f"/jobs/{job_id}")
    return str(reply.json()["state"]) if reply.status == 200 else ""


@pytest.mark.parametrize(("queue", "processes"), [("celery", 3), ("arq", 2)])
def test_the_demo_starts_its_queue_workers_and_stops_them(redis_url: str, queue: str, processes: int) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--port", str(port), "--redis", redis_url, "--queue", queue,
         "--job-workers", "2", "--job-lease", "3", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        workers: list[psutil.Process] = []

        def started() -> bool:
            workers[:] = [p for p in psutil.Process(demo.pid).children(recursive=True)
                          if "uvicorn" not in " ".join(p.cmdline())]
            return len(workers) >= processes and listening(port)

        assert wait_until(started, 30), [p.cmdline() for p in workers]
        reply = request(port, "POST", "/jobs", body=json.dumps({"steps": 3, "step_ms": 10}).encode())
        assert wait_until(lambda: job_state(port, reply.json()["id"]) == "Completed", 30)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(30)
    time.sleep(0.2)
    assert [p.pid for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
