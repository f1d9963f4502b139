"""A rolling deploy: nginx round robin over three gateway processes, Redis and a job worker; each process is
restarted (SIGTERM, then a new process on its port) one after another during a 60-step job. On SIGTERM a process
drains: its connections resume on the other processes, which take them over through the Redis backplane. Every
page (one per transport) shows every step exactly once, and keeps its connection id: resumed, never
re-negotiated."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .servers import ARTIFACTS, http_status, stop_process
from .test_restart import Restartable
from .test_scaleout import _balancer, _redis

TRANSPORTS = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]
STEPS = 60
FAIL_TIMEOUT = 3.0  # how long nginx leaves out a process that refused a connection (test_scaleout's balancer)


class Rolling:
    """Three restartable gateways, a job worker, Redis and a balancer."""

    def __init__(self, base: str, gateways: list[Restartable]) -> None:
        self.base = base
        self.gateways = gateways

    def restart(self, gateway: Restartable) -> float:
        """SIGTERM ``gateway``, wait for it to exit (it drains first), start it again; seconds it was down."""
        assert gateway.proc is not None
        stopped = time.monotonic()
        stop_process(gateway.proc, grace=30)
        # it exited by itself (uvicorn re-raises the SIGTERM it handled once it has shut down), not by SIGKILL
        assert gateway.proc.returncode in (0, -signal.SIGTERM), f"exit code {gateway.proc.returncode}"
        gateway.start()
        assert http_status(f"{gateway.base}/ready") == 200
        down = time.monotonic() - stopped
        time.sleep(FAIL_TIMEOUT)  # as a deploy waits for the balancer to take the process back before the next
        return down


@pytest.fixture
def rolling() -> Iterator[Rolling]:
    with _redis() as redis_url:
        ARTIFACTS.mkdir(exist_ok=True)
        worker_log = (ARTIFACTS / "rolling-worker.log").open("wb")
        python = os.environ.get("GATEWAY_E2E_PYTHON") or sys.executable
        worker = subprocess.Popen([python, "-m", "gateway", "worker", "--redis", redis_url], stdout=worker_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        gateways = [Restartable(redis_url) for _ in range(3)]
        try:
            for gateway in gateways:
                gateway.start()
            with _balancer([g.port for g in gateways], next_upstream="error timeout http_502 http_503") as base:
                yield Rolling(base, gateways)
        finally:
            for gateway in gateways:
                with contextlib.suppress(Exception):
                    gateway.stop()
            stop_process(worker)
            worker_log.close()


def _open(context: BrowserContext, base: str, transport: str) -> tuple[Page, str]:
    page = context.new_page()
    page.goto(f"{base}/?transport={transport}")
    expect(page.locator("#conn")).to_have_text("Connected", timeout=15_000)
    expect(page.locator("#transport")).to_have_text(transport)
    page.evaluate("window.ids = []; demo.conn.onreconnected((id) => window.ids.push(id))")
    page.fill("#steps", str(STEPS))
    page.fill("#step_ms", "400")
    page.click("#start")
    connection_id: str = page.evaluate("demo.conn.connectionId")
    return page, connection_id


def _seqs(page: Page) -> list[int]:
    return [int(line.split()[0].lstrip("#")) for line in page.locator("gateway-job [part=log] li").all_inner_texts()]


def test_a_rolling_restart_loses_and_doubles_nothing_and_keeps_every_connection(
    context: BrowserContext, rolling: Rolling,
) -> None:
    pages = {t: _open(context, rolling.base, t) for t in TRANSPORTS}
    for page, _ in pages.values():
        page.wait_for_function("demo.job.log.length >= 3", timeout=15_000)
    downtime = [rolling.restart(gateway) for gateway in rolling.gateways]
    for transport, (page, _) in pages.items():
        assert len(_seqs(page)) < STEPS + 2, f"{transport}: the job ended before the restarts did ({downtime})"
    for transport, (page, connection_id) in pages.items():
        expect(page.locator("gateway-job [part=state]")).to_have_text("Completed", timeout=60_000)
        assert _seqs(page) == list(range(1, STEPS + 3)), transport  # Pending, 60 steps, Completed: each once
        assert page.evaluate("demo.conn.connectionId") == connection_id, transport
        assert set(page.evaluate("window.ids")) <= {connection_id}, transport  # resumed, never re-negotiated
        expect(page.locator("#conn")).to_have_text("Connected")
