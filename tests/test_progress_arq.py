"""Job progress from a real arq worker process, through a real gateway server, to the project's client.

The demo serves the jobs hub with ``--queue arq``; its arq worker (``gateway.demo.arq_worker``) runs in a
worker process started here, on a redis-server started here too.
"""

from __future__ import annotations

import shutil
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
QUEUE = "arq"
TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")


redis_url, live, workers = queue_fixtures(QUEUE)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_twenty_step_job_shows_every_step_once_in_order(live: Live, workers: Workers, transport: str) -> None:
    await twenty_steps(live, transport)


async def test_a_late_subscriber_gets_100_percent_and_the_whole_log(live: Live, workers: Workers) -> None:
    await late_subscriber(live)


async def test_the_heartbeat_keeps_a_step_longer_than_the_lease_alive(live: Live, workers: Workers) -> None:
    await long_step_outlives_the_lease(live, LEASE)


async def test_cancel_aborts_the_job_within_2_s(live: Live, workers: Workers) -> None:
    await cancel_stops_the_task(live)


async def test_a_failing_job_is_failed_with_its_exception(live: Live, workers: Workers) -> None:
    async with Watcher(live, "WebSockets") as page:
        job_id = start_job(live, 5, 10, fail_at=3)
        await page.subscribe(job_id)
        await page.until_final(15)
        last = page.events()[-1]
    assert last["state"] == "Failed" and "payment provider declined" in last["error"], last


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


async def test_cancel_before_start_takes_the_job_off_the_queue(alone: tuple[Live, str]) -> None:
    """No worker yet: Cancel is Cancelled at once, and the worker started later never runs the job."""
    live, url = alone
    async with Watcher(live, "WebSockets") as page:
        job_id = start_job(live, 5, 10)
        await page.subscribe(job_id)
        assert await page.client.invoke("Cancel", job_id) is True
        assert await page.until_final(2) < 1.0 and page.state() == "Cancelled"
        with running(QUEUE, 1, url):
            async with Watcher(live, "WebSockets") as other:
                await other.subscribe(start_job(live, 2, 10))
                await other.until_final(10)
        assert [e["state"] for e in page.events()] == ["Pending", "Cancelled"]


async def test_a_worker_stopped_mid_job_fails_it_at_once(alone: tuple[Live, str]) -> None:
    """SIGTERM to the worker (no cancel asked for): the job is Failed "worker stopped", not Cancelled, and not
    left for the reaper."""
    live, url = alone
    with running(QUEUE, 1, url) as workers:
        async with Watcher(live, "WebSockets") as page:
            await page.subscribe(start_job(live, 100, 100))
            await page.until_step(2)
            workers.processes[0].terminate()
            took = await page.until_final(LEASE)
            last = page.events()[-1]
    assert last["state"] == "Failed" and last["error"].startswith("worker stopped"), last
    assert took < 1.0
