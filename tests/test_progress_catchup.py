"""A page catches up after a Redis outage without subscribing again.

Redis pub/sub does not replay what a gateway missed while its backplane was not subscribed. Here the worker's
steps and its Completed are published (flushed from its outbox) after redis-server is back but before this
gateway's backplane has subscribed again, so pub/sub alone loses them; the store's recovery (the backplane's
``on_recovered``) sends them from the record, as live ``progress`` calls, before anything later.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from live import Live, serve_gateways
from test_progress_redis import DurableRedis

from gateway import Gateway
from gateway.backplane.redis import Outage, RedisBackplane
from gateway.client import HubClient
from gateway.progress import ProgressHub, connect
from gateway.progress.redis import RedisStore

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (scripts/setup.sh)")

PAUSE = 3.0
"""Seconds the backplane waits between tries to subscribe: the worker's flush comes within them."""


@pytest.fixture
def redis() -> Iterator[DurableRedis]:
    server = DurableRedis()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def served(redis: DurableRedis) -> Iterator[tuple[Live, RedisBackplane]]:
    store = RedisStore(redis.url, hub="jobs")
    backplane = RedisBackplane(redis.url, reconnect_pause=PAUSE)
    backplane.on_recovered(store.recover)
    gateway = Gateway(ProgressHub.bind(store), name="jobs", backplane=backplane)
    with serve_gateways({"/hubs/jobs": gateway}) as server:
        server.call(backplane.start)
        yield server, backplane
        server.call(store.close)
        server.call(backplane.close)


def applied(last: int, received: list[dict[str, Any]]) -> list[int]:
    """The seqs a page applies from ``received`` after a snapshot at ``last``: each above the last applied."""
    seqs = []
    for event in received:
        if event["seq"] > last:
            last = event["seq"]
            seqs.append(last)
    return seqs


async def test_a_page_gets_every_step_and_completed_missed_in_an_outage_without_subscribing_again(
    redis: DurableRedis, served: tuple[Live, RedisBackplane],
) -> None:
    server, backplane = served
    job_id, progress = secrets.token_hex(6), connect(redis.url)
    worker = progress.job(job_id)
    await asyncio.to_thread(worker.create, total=10)
    page = HubClient(server.url("/hubs/jobs"), transport="WebSockets")
    received: list[dict[str, Any]] = []
    page.on("progress", received.append)
    await page.start()
    start = (await page.invoke("Subscribe", job_id))["seq"]

    def run(first: int, last: int, complete: bool = False) -> None:
        for step in range(first, last + 1):
            worker.step(message=f"step {step}", step=step)
        if complete:
            worker.complete({"ok": True})

    await asyncio.to_thread(worker.start, 10)
    await asyncio.to_thread(run, 1, 3)
    await _until(lambda: applied(start, received)[-1:] == [5], 5)
    redis.stop()
    await _until(lambda: not backplane.healthy, 5)
    await asyncio.to_thread(run, 4, 10, True)
    assert worker.waiting == 8
    redis.start()
    await _until(lambda: worker.waiting == 0, PAUSE)
    assert not backplane.healthy, "the worker's flush must come before the gateway subscribes again"
    final = worker.outbox.record.seq
    assert final == 1 + 1 + 10 + 1
    await _until(lambda: applied(start, received)[-1:] == [final], PAUSE + 5)
    assert applied(start, received) == list(range(start + 1, final + 1))  # no gap, each seq once
    assert received[-1]["state"] == "Completed" and received[-1]["result"] == {"ok": True}
    await page.close()
    progress.close()


async def test_recovery_reads_only_the_jobs_with_subscribers_here_and_the_events_since_the_outage(
    redis: DurableRedis,
) -> None:
    store, progress = RedisStore(redis.url, hub="jobs"), connect(redis.url)
    try:
        for job_id in ("a", "b", "c"):
            job = progress.ajob(job_id)
            await job.start(total=3)
            await job.step()
            began = time.time() * 1000 + 3_000  # later than these events, even less the clock-skew margin
            if job_id != "c":
                await job.step()
                await job.step()
            if job_id == "a":
                await job.complete()
        groups = {"jobs": frozenset({"job:a", "job:c", "chat:a"}), "other": frozenset({"job:b"})}
        sends = await store.recover(Outage(began, groups))
        got = [(s.target.names[0], s.record.arguments[0]["seq"], s.record.arguments[0]["state"]) for s in sends]
        assert got == [("job:a", 5, "Completed")]  # b has no subscriber here; c had nothing since
        sends = await store.recover(Outage(0.0, groups))
        assert [s.record.arguments[0]["seq"] for s in sends] == [1, 2, 3, 4, 5, 1, 2]
    finally:
        await store.close()
        progress.close()


async def _until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)
