"""Job progress from real worker processes to the demo's <gateway-job> element, on each forced transport.

A real redis-server, the demo server with the Redis backplane and no job worker of its own, and worker processes
of a job queue started by the fixture (so that a test can kill them). The page is read through the element: its
rendered step log, its properties, and the `progress` and `done` DOM events it dispatches.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .servers import ARTIFACTS, GatewayProcess, gateway_argv, start_gateway, stop_process
from .test_scaleout import _redis

TRANSPORTS = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]
STEPS = 20
STATE, PERCENT, ERROR, LOG, CANCEL = (f"gateway-job [part={p}]" for p in ("state", "percent", "error", "log", "cancel"))

# Records what the element dispatches; events dispatched in one task share a batch number.
RECORDER = """
window.__progress = []; window.__done = []; let batch = 0, open = false;
document.addEventListener("progress", (e) => {
  if (!(e.target instanceof HTMLElement) || e.target.localName !== "gateway-job") return;
  if (!open) { open = true; batch++; setTimeout(() => { open = false; }); }
  __progress.push({seq: e.detail.seq, state: e.detail.state, step: e.detail.step, batch});
});
document.addEventListener("done", (e) => __done.push(e.detail));
"""


def python() -> str:
    return os.environ.get("GATEWAY_E2E_PYTHON") or sys.executable


# How each queue's workers are started: (the demo's extra arguments, the worker command).
QUEUES: dict[str, tuple[list[str], list[str]]] = {
    "runner": (["--job-workers", "0"], [python(), "-m", "gateway", "worker", "--redis", "{redis}",
                                        "--concurrency", "2"]),
}


@dataclass
class Stack:
    """redis-server, the demo server on it, and the queue's worker processes (which a test may kill)."""

    queue: str
    redis_url: str
    server: GatewayProcess
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.base

    def ensure_workers(self) -> None:
        """Start the worker command again if a test killed it."""
        if self.workers and self.workers[-1].poll() is None:
            return
        ARTIFACTS.mkdir(exist_ok=True)
        argv = [a.replace("{redis}", self.redis_url) for a in QUEUES[self.queue][1]]
        with (ARTIFACTS / f"{self.queue}-worker-{self.server.port}.log").open("ab") as log:
            self.workers.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                 start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1")))

    def kill_workers(self) -> None:
        """SIGKILL every process of the worker command (a pool's children too), as a crash would."""
        for proc in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop(self) -> None:
        for proc in self.workers:
            stop_process(proc)
        self.server.stop()


@contextlib.contextmanager
def _stack(queue: str) -> Iterator[Stack]:
    with _redis() as redis_url:
        extra = ["--redis", redis_url, *QUEUES[queue][0]]
        server = start_gateway(lambda port: gateway_argv(port, extra_args=extra))
        stack = Stack(queue, redis_url, server)
        try:
            stack.ensure_workers()
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="module", params=list(QUEUES))
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    with _stack(request.param) as s:
        yield s


def post_job(base: str, steps: int, step_ms: int) -> str:
    body = json.dumps({"steps": steps, "step_ms": step_ms}).encode()
    request = urllib.request.Request(f"{base}/jobs", body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(json.load(response)["id"])


def snapshot(base: str, job_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/jobs/{job_id}", timeout=5) as response:
        return dict(json.load(response))


def open_page(page: Page, stack: Stack, transport: str, job: str | None = None) -> None:
    page.add_init_script(RECORDER)
    page.goto(f"{stack.base}/?transport={transport}" + (f"&job={job}" if job else ""))
    expect(page.locator("#conn")).to_have_text("Connected")
    expect(page.locator("#transport")).to_have_text(transport)


def start_job(page: Page, steps: int, step_ms: int) -> str:
    page.fill("#steps", str(steps))
    page.fill("#step_ms", str(step_ms))
    page.click("#start")
    page.wait_for_function("demo.job.jobId && demo.job.seq > 0")
    return str(page.evaluate("demo.job.jobId"))


def rendered(page: Page) -> list[tuple[int, str]]:
    """(seq, state) of each line of the element's rendered step log."""
    lines = page.locator(f"{LOG} li").all_inner_texts()
    return [(int(line.split()[0].lstrip("#")), line.split()[1]) for line in lines]


def assert_whole_run(page: Page, final: str = "Completed") -> list[dict[str, Any]]:
    """The element shows every event once, in seq order from 1, ending at `final`; its DOM events agree."""
    log: list[dict[str, Any]] = page.evaluate("demo.job.log")
    seqs = [e["seq"] for e in log]
    assert seqs == list(range(1, len(log) + 1)), seqs
    assert rendered(page) == [(e["seq"], e["state"]) for e in log]
    dispatched = page.evaluate("__progress")
    assert [(e["seq"], e["state"]) for e in dispatched] == [(e["seq"], e["state"]) for e in log]
    assert log[0]["state"] == "Pending" and log[-1]["state"] == final, [e["state"] for e in log]
    assert [d["seq"] for d in page.evaluate("__done")] == [log[-1]["seq"]]
    return log


def steps_shown(log: list[dict[str, Any]]) -> list[int]:
    return [e["step"] for e in log if e["state"] == "Processing" and e.get("step")]


def wait_for_step(page: Page, step: int, timeout: float = 20_000) -> None:
    page.wait_for_function(f"(demo.job.current?.step || 0) >= {step}", timeout=timeout)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_page_shows_every_step_once_in_order(page: Page, stack: Stack, transport: str) -> None:
    stack.ensure_workers()
    open_page(page, stack, transport)
    started = time.monotonic()
    start_job(page, STEPS, 60)
    expect(page.locator(STATE)).to_have_text("Completed", timeout=30_000)
    print(f"\n{stack.queue}/{transport}: a 20 x 60 ms job seen to its end in {time.monotonic() - started:.2f} s")
    expect(page.locator(PERCENT)).to_have_text("100%")
    log = assert_whole_run(page)
    assert steps_shown(log) == list(range(1, STEPS + 1))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_page_opened_after_completion_shows_100_and_the_whole_log_at_once(
    page: Page, stack: Stack, transport: str
) -> None:
    stack.ensure_workers()
    job = post_job(stack.base, STEPS, 10)
    deadline = time.monotonic() + 30
    while (snap := snapshot(stack.base, job))["state"] != "Completed":
        assert time.monotonic() < deadline, snap
        time.sleep(0.05)
    open_page(page, stack, transport, job)
    expect(page.locator(STATE)).to_have_text("Completed")
    expect(page.locator(PERCENT)).to_have_text("100%")
    log = assert_whole_run(page)
    assert len(log) == len(snap["log"]) and steps_shown(log) == list(range(1, STEPS + 1))
    assert {e["batch"] for e in page.evaluate("__progress")} == {1}, "the snapshot is rendered in one go"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_reload_at_step_10_shows_steps_1_to_20_exactly_once(page: Page, stack: Stack, transport: str) -> None:
    stack.ensure_workers()
    open_page(page, stack, transport)
    job = start_job(page, STEPS, 200)
    wait_for_step(page, 10)
    page.reload()
    expect(page.locator("#conn")).to_have_text("Connected")
    assert page.evaluate("demo.job.jobId") == job
    expect(page.locator(STATE)).to_have_text("Completed", timeout=30_000)
    log = assert_whole_run(page)
    assert steps_shown(log) == list(range(1, STEPS + 1))
    assert page.evaluate("__progress.at(-1).batch") > 1, "the snapshot first, then live steps"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cancel_stops_the_task_within_2_s_and_the_page_shows_cancelled(
    page: Page, stack: Stack, transport: str
) -> None:
    stack.ensure_workers()
    open_page(page, stack, transport)
    job = start_job(page, STEPS, 300)
    wait_for_step(page, 3)
    clicked = time.monotonic()
    page.click(CANCEL)
    expect(page.locator(STATE)).to_have_text("Cancelled", timeout=2_000)
    shown = time.monotonic() - clicked
    print(f"\n{stack.queue}/{transport}: Cancelled shown {shown * 1000:.0f} ms after the click")
    at_cancel = snapshot(stack.base, job)
    time.sleep(1.0)  # more than three steps' time: a task still running would have published
    later = snapshot(stack.base, job)
    assert (later["state"], later["seq"]) == ("Cancelled", at_cancel["seq"]), later
    log = assert_whole_run(page, final="Cancelled")
    assert 3 <= len(steps_shown(log)) < STEPS
    expect(page.locator(CANCEL)).to_be_hidden()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_worker_killed_mid_job_shows_failed_with_a_reason(page: Page, stack: Stack, transport: str) -> None:
    stack.ensure_workers()
    open_page(page, stack, transport)
    start_job(page, STEPS, 300)
    wait_for_step(page, 3)
    killed = time.monotonic()
    stack.kill_workers()
    try:
        expect(page.locator(STATE)).to_have_text("Failed", timeout=40_000)
    finally:
        stack.ensure_workers()
    print(f"\n{stack.queue}/{transport}: Failed shown {time.monotonic() - killed:.1f} s after SIGKILL")
    expect(page.locator(ERROR)).not_to_be_empty()
    log = assert_whole_run(page, final="Failed")
    assert log[-1].get("error"), log[-1]
    assert 3 <= len(steps_shown(log)) < STEPS
