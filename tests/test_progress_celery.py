"""Job progress from a real Celery worker process, through a real gateway server, to the project's client.

The demo serves the jobs hub with ``--queue celery``; its Celery app (``gateway.demo.celery_app``) runs in a
worker process started here, on a redis-server started here too.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator

import pytest
from live import Live, serve
from progress_journeys import (
    Watcher,
    cancel_stops_the_task,
    killed_worker_fails,
    late_subscriber,
    long_step_outlives_the_lease,
    start_job,
    twenty_steps,
)
from queueworkers import LEASE, Workers, queue_fixtures, running

from gateway.demo.app import create_app

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (scripts/setup.sh)")
QUEUE = "celery"
TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")


redis_url, live, workers = queue_fixtures(QUEUE)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_twenty_step_job_shows_every_step_once_in_order(live: Live, workers: Workers, transport: str) -> None:
    await twenty_steps(live, transport)


async def test_a_late_subscriber_gets_100_percent_and_the_whole_log(live: Live, workers: Workers) -> None:
    await late_subscriber(live)


async def test_the_heartbeat_keeps_a_step_longer_than_the_lease_alive(live: Live, workers: Workers) -> None:
    await long_step_outlives_the_lease(live, LEASE)


def celery_state(redis_url: str, task_id: str) -> str:
    """What Celery's own result backend says of a task."""
    from celery import Celery

    app = Celery("test", broker=redis_url, backend=redis_url, set_as_current=False)
    return str(app.AsyncResult(task_id).state)  # not app.close(): kombu's pools are shared by the URL's apps


async def test_cancel_stops_the_task_within_2_s_and_celery_agrees(live: Live, workers: Workers, redis_url: str) -> None:
    took, last = await cancel_stops_the_task(live)
    assert celery_state(redis_url, last["jobId"]) == "REVOKED"


async def test_a_failing_task_is_failed_with_its_exception(live: Live, workers: Workers, redis_url: str) -> None:
    async with Watcher(live, "WebSockets") as page:
        job_id = start_job(live, 5, 10, fail_at=3)
        await page.subscribe(job_id)
        await page.until_final(15)
        last = page.events()[-1]
    assert last["state"] == "Failed" and "payment provider declined" in last["error"], last
    assert celery_state(redis_url, job_id) == "FAILURE"


@pytest.fixture
def alone(redis_url: str) -> Iterator[tuple[Live, str]]:
    """A server on its own Redis database (so its own queue): the workers started on it run its jobs alone."""
    url = redis_url.rsplit("/", 1)[0] + "/1"
    with serve(create_app(redis_url=url, queue=QUEUE, job_workers=0, lease=LEASE)) as server:
        yield server, url


async def test_a_killed_worker_fails_its_job_within_the_lease(alone: tuple[Live, str]) -> None:
    live, url = alone
    with running(QUEUE, 1, url) as doomed:
        await killed_worker_fails(live, doomed.kill, LEASE)


def pool_processes(worker_pid: int) -> list[int]:
    """The pool (child) processes of a Celery worker's main process."""
    with open(f"/proc/{worker_pid}/task/{worker_pid}/children") as children:
        return [int(pid) for pid in children.read().split()]


async def test_a_killed_pool_process_is_reported_by_the_worker_before_the_lease(redis_url: str) -> None:
    """The worker's main process outlives its pool process: it reports the job Failed (Celery's WorkerLostError,
    after billiard notices, ~5 s) before a 10 s lease would, then runs the next job."""
    url, lease = redis_url.rsplit("/", 1)[0] + "/2", 10.0
    with serve(create_app(redis_url=url, queue=QUEUE, job_workers=0, lease=lease)) as live, \
            running(QUEUE, 1, url, lease=lease) as workers:
        (main,) = workers.processes

        def kill_pool() -> None:
            for pid in pool_processes(main.pid):
                os.kill(pid, signal.SIGKILL)

        async with Watcher(live, "WebSockets") as page:
            await page.subscribe(start_job(live, 100, 100))
            await page.until_step(2)
            kill_pool()
            took = await page.until_final(lease)
            last = page.events()[-1]
            assert last["state"] == "Failed" and "worker lost: Worker exited prematurely" in last["error"], last
        async with Watcher(live, "WebSockets") as next_page:
            await next_page.subscribe(start_job(live, 3, 10))
            await next_page.until_final(10)
            assert next_page.state() == "Completed"
        assert took < lease


async def test_cancel_of_a_queued_task_revokes_it_before_it_starts(alone: tuple[Live, str]) -> None:
    """One pool process, busy: the queued task is revoked; the worker reports it Cancelled and never runs it."""
    live, url = alone
    with running(QUEUE, 1, url):
        async with Watcher(live, "WebSockets") as busy, Watcher(live, "WebSockets") as page:
            await busy.subscribe(start_job(live, 20, 50))
            await busy.until_step(1)
            job_id = start_job(live, 5, 10)
            await page.subscribe(job_id)
            assert await page.client.invoke("Cancel", job_id) is True
            await page.until_final(5)
            await busy.until_final(10)
        assert [e["state"] for e in page.events()] == ["Pending", "Cancelled"]
        assert celery_state(url, job_id) == "REVOKED"


async def test_cancel_with_terminate_kills_the_task_mid_step(redis_url: str) -> None:
    """terminate=True: the pool process running the task is killed mid-step (3 s steps: no step boundary comes
    before the 2 s bound), and the worker's main process reports Cancelled."""
    from celery import Celery

    from gateway.progress.celery import celery_canceller

    url = redis_url.rsplit("/", 1)[0] + "/3"
    client = Celery("test-terminate", broker=url, backend=url, set_as_current=False)
    app = create_app(redis_url=url, queue=QUEUE, job_workers=0, lease=LEASE)
    app.state.progress.canceller = celery_canceller(client, terminate=True)
    with serve(app) as live, running(QUEUE, 1, url):
        async with Watcher(live, "WebSockets") as page:
            job_id = start_job(live, 5, 3000)
            await page.subscribe(job_id)
            await page.until(lambda events: events[-1]["state"] == "Processing", 10)
            assert await page.client.invoke("Cancel", job_id) is True
            took = await page.until_final(5)
            assert page.state() == "Cancelled" and took < 2.0, (took, page.events()[-1])
            assert [e["step"] for e in page.events() if e["state"] == "Processing"] == [0]


def test_a_task_called_as_a_function_runs_on_the_in_memory_store() -> None:
    from gateway.demo.celery_app import run_job

    assert run_job(3, 0) == {"steps": 3, "message": "Done: your trip is booked"}
