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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from playwright.sync_api import Page, expect

from .servers import ARTIFACTS, GatewayProcess, gateway_argv, log_tail, start_gateway, stop_process
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


LEASE = 2.0  # seconds a worker's heartbeat stays valid: a killed worker's job turns Failed soon after


def python() -> str:
    return os.environ.get("GATEWAY_E2E_PYTHON") or sys.executable


def queue_argv(queue: str, redis_url: str) -> list[str]:
    """The demo's arguments for `queue`: its jobs go to Redis, and it starts no worker (the fixture does)."""
    if queue == "runner":  # the demo's own step runner, in a `gateway worker` process
        return ["--redis", redis_url, "--job-workers", "0"]
    return ["--redis", redis_url, "--queue", queue, "--job-workers", "0"]


def start_queue_workers(queue: str, redis_url: str, log: IO[bytes]) -> list[subprocess.Popen[bytes]]:
    """One worker process of `queue` (each in its own process group, so that a kill takes its pool too)."""
    if queue == "runner":
        argv = [python(), "-m", "gateway", "worker", "--redis", redis_url, "--concurrency", "2"]
        return [subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))]
    from gateway.demo.workers import start_workers

    return start_workers(queue, 1, redis_url, lease=LEASE, output=log, env={"PYTHONUNBUFFERED": "1"})


def workers_ready(queue: str, log_path: Path, redis_url: str) -> bool:
    """Celery logs "ready."; an arq worker keeps a health-check key in Redis."""
    if queue == "celery":
        return " ready." in log_path.read_text(errors="replace")
    if queue == "arq":
        import redis

        client = redis.Redis.from_url(redis_url)
        try:
            return bool(client.exists("arq:queue:health-check"))
        finally:
            client.close()
    return True


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

    @property
    def log_path(self) -> Path:
        return ARTIFACTS / f"{self.queue}-workers-{self.server.port}.log"

    def ensure_workers(self, timeout: float = 30.0) -> None:
        """Start the workers (again, if a test killed them) and wait until they take jobs."""
        if self.workers and all(p.poll() is None for p in self.workers):
            return
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path.write_bytes(b"")
        with self.log_path.open("ab") as log:
            self.workers = start_queue_workers(self.queue, self.redis_url, log)
        deadline = time.monotonic() + timeout
        while not workers_ready(self.queue, self.log_path, self.redis_url):
            assert all(p.poll() is None for p in self.workers), log_tail(self.log_path)
            assert time.monotonic() < deadline, f"{self.queue} workers not ready:\n{log_tail(self.log_path)}"
            time.sleep(0.1)

    def kill_workers(self) -> None:
        """SIGKILL every worker process group (pool processes too): no handler runs, no heartbeat follows."""
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
        env = {"GATEWAY_REDIS_URL": redis_url, "GATEWAY_PROGRESS_LEASE": str(LEASE)}
        server = start_gateway(lambda port: gateway_argv(port, extra_args=queue_argv(queue, redis_url)), env=env)
        stack = Stack(queue, redis_url, server)
        try:
            stack.ensure_workers()
            yield stack
        finally:
            stack.stop()


Stacks = Callable[[str], Stack]


@pytest.fixture(scope="module")
def stacks() -> Iterator[Stacks]:
    """`stacks(queue)`: the stack of `queue`, started on first use and stopped at the end of the module."""
    with contextlib.ExitStack() as exits:
        started: dict[str, Stack] = {}

        def get(queue: str) -> Stack:
            if queue not in started:
                started[queue] = exits.enter_context(_stack(queue))
            started[queue].ensure_workers()
            return started[queue]

        yield get


# Celery on each forced transport; arq on one (its four-transport contract suite is in tests/); the demo's own
# runner (`gateway worker`) on one.
CASES = [pytest.param("celery", t, id=f"celery-{t}") for t in TRANSPORTS] + [
    pytest.param("arq", "WebSockets", id="arq-WebSockets"),
    pytest.param("runner", "LongPolling", id="runner-LongPolling"),
]


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


@pytest.mark.parametrize(("queue", "transport"), CASES)
def test_a_page_shows_every_step_once_in_order(page: Page, stacks: Stacks, queue: str, transport: str) -> None:
    stack = stacks(queue)
    open_page(page, stack, transport)
    started = time.monotonic()
    start_job(page, STEPS, 60)
    expect(page.locator(STATE)).to_have_text("Completed", timeout=30_000)
    print(f"\n{stack.queue}/{transport}: a 20 x 60 ms job seen to its end in {time.monotonic() - started:.2f} s")
    expect(page.locator(PERCENT)).to_have_text("100%")
    log = assert_whole_run(page)
    assert steps_shown(log) == list(range(1, STEPS + 1))


@pytest.mark.parametrize(("queue", "transport"), CASES)
def test_a_page_opened_after_completion_shows_100_and_the_whole_log_at_once(
    page: Page, stacks: Stacks, queue: str, transport: str
) -> None:
    stack = stacks(queue)
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


@pytest.mark.parametrize(("queue", "transport"), CASES)
def test_a_reload_at_step_10_shows_steps_1_to_20_exactly_once(
    page: Page, stacks: Stacks, queue: str, transport: str
) -> None:
    stack = stacks(queue)
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


@pytest.mark.parametrize(("queue", "transport"), CASES)
def test_cancel_stops_the_task_within_2_s_and_the_page_shows_cancelled(
    page: Page, stacks: Stacks, queue: str, transport: str
) -> None:
    stack = stacks(queue)
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


@pytest.mark.parametrize(("queue", "transport"), CASES)
def test_a_worker_killed_mid_job_shows_failed_with_a_reason(
    page: Page, stacks: Stacks, queue: str, transport: str
) -> None:
    stack = stacks(queue)
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
    expect(page.locator(ERROR)).to_contain_text("worker lost")
    log = assert_whole_run(page, final="Failed")
    assert "worker lost" in log[-1]["error"], log[-1]
    assert 3 <= len(steps_shown(log)) < STEPS
