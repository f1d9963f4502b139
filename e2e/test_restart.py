"""A server restart in the middle of a job: the page's client negotiates afresh, the page re-subscribes, and the
job page recovers the job's state (the job lives in Redis and its worker in another process, so both survive)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from .servers import ARTIFACTS, free_port, gateway_argv, http_status, log_tail, stop_process, wait_for_port
from .test_scaleout import _redis

TRANSPORTS = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]


class Restartable:
    """One gateway process on a fixed port, which the test can stop and start again."""

    def __init__(self, redis_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.argv = gateway_argv(self.port, extra_args=["--redis", redis_url, "--job-workers", "0"])
        self.log = ARTIFACTS / f"restart-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
        wait_for_port(self.port, 20, self.proc)
        assert http_status(f"{self.base}/jobs/none") == 404, log_tail(self.log)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


@pytest.fixture(scope="module")
def restartable() -> Iterator[Restartable]:
    with _redis() as redis_url:
        worker_log = (ARTIFACTS / "restart-worker.log").open("wb")
        python = os.environ.get("GATEWAY_E2E_PYTHON") or sys.executable
        worker = subprocess.Popen([python, "-m", "gateway", "worker", "--redis", redis_url], stdout=worker_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        server = Restartable(redis_url)
        server.start()
        try:
            yield server
        finally:
            server.stop()
            stop_process(worker)
            worker_log.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_job_page_recovers_after_a_server_restart(page: Page, restartable: Restartable, transport: str) -> None:
    page.goto(f"{restartable.base}/?transport={transport}")
    expect(page.locator("#conn")).to_have_text("Connected")
    page.fill("#steps", "14")
    page.fill("#step_ms", "300")
    page.click("#start")
    page.wait_for_function("demo.job.log.length >= 3")
    restartable.stop()
    expect(page.locator("#conn")).not_to_have_text("Connected")
    restartable.start()
    expect(page.locator("gateway-job [part=state]")).to_have_text("Completed", timeout=30_000)
    expect(page.locator("#conn")).to_have_text("Connected")
    seqs = [int(line.split()[0].lstrip("#")) for line in page.locator("gateway-job [part=log] li").all_inner_texts()]
    assert seqs == list(range(1, 17))  # Pending, 14 steps, Completed: each once, none missing
