"""Progress through a real redis-server: a worker with no server in its process (the sync publisher, as in a
Celery task) reaches a page on a real gateway; a Redis outage mid-job never raises into the task and the record
and the page catch up; a retried batch is not doubled; Cancel calls the canceller; the reaper fails a lost job."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from live import Live, serve_gateways
from test_backplane_redis import RedisServer

from gateway import Gateway
from gateway.backplane.redis import RedisBackplane
from gateway.client import HubClient
from gateway.progress import JobCancelled, ProgressHub, connect
from gateway.progress.record import Verdict, stepped
from gateway.progress.redis import RedisStore, RedisWriter

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (scripts/setup.sh)")


class DurableRedis(RedisServer):
    """A redis-server that keeps its data across a restart on the same port (append-only file, fsync always)."""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)


@pytest.fixture
def redis() -> Iterator[DurableRedis]:
    server = DurableRedis()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def live(redis: DurableRedis) -> Iterator[tuple[Live, RedisStore]]:
    store = RedisStore(redis.url, hub="jobs", lease=0.5)
    backplane = RedisBackplane(redis.url)
    gateway = Gateway(ProgressHub.bind(store), name="jobs", backplane=backplane)
    with serve_gateways({"/hubs/jobs": gateway}) as server:
        server.call(backplane.start)
        yield server, store
        server.call(store.close)
        server.call(backplane.close)


class Page:
    """A page's client: applies the snapshot, then live events above the last seq; on a gap, or after QUIET
    seconds with nothing while the job runs, it subscribes again (Redis pub/sub does not replay what a gateway
    missed while it was resubscribing after an outage: the record does)."""

    QUIET = 1.0

    def __init__(self, client: HubClient, job_id: str) -> None:
        self.client, self.job_id = client, job_id
        self.seen: list[int] = []
        self.resubscribes = 0
        self.final = False
        self._busy = False
        self._heard = time.monotonic()
        client.on("progress", self._live)

    def _apply(self, event: dict[str, Any]) -> None:
        self._heard = time.monotonic()
        if event["seq"] > (self.seen[-1] if self.seen else 0):
            self.seen.append(event["seq"])
            self.final = event["state"] in ("Completed", "Failed", "Cancelled")

    async def keep_up(self) -> None:
        while not self.final:
            await asyncio.sleep(0.2)
            if time.monotonic() - self._heard > self.QUIET and not self._busy:
                self.resubscribes += 1
                await self.subscribe()

    async def subscribe(self) -> None:
        snap = await self.client.invoke("Subscribe", self.job_id)
        for event in [*snap["log"], snap]:
            self._apply(event)

    def _live(self, event: dict[str, Any]) -> None:
        last = self.seen[-1] if self.seen else 0
        if event["seq"] > last + 1 and not self._busy:
            self._busy = True
            self.resubscribes += 1
            task = asyncio.ensure_future(self.subscribe())
            task.add_done_callback(lambda _: setattr(self, "_busy", False))
        elif event["seq"] == last + 1:
            self._apply(event)


@pytest.fixture
async def page(live: tuple[Live, RedisStore]) -> AsyncIterator[HubClient]:
    client = HubClient(live[0].url("/hubs/jobs"), transport="WebSockets")
    await client.start()
    yield client
    await client.close()


async def test_a_redis_outage_mid_job_never_raises_and_the_page_catches_up(
    redis: DurableRedis, live: tuple[Live, RedisStore], page: HubClient,
) -> None:
    job_id = secrets.token_hex(6)
    progress = connect(redis.url)
    progress.job(job_id).create(total=10)
    worker = progress.job(job_id)
    viewer = Page(page, job_id)
    await viewer.subscribe()
    keeping_up = asyncio.ensure_future(viewer.keep_up())

    def run(first: int, last: int) -> None:
        for step in range(first, last + 1):
            worker.step(message=f"step {step}", step=step)

    await asyncio.to_thread(worker.start, 10)
    await asyncio.to_thread(run, 1, 3)
    redis.stop()
    started = time.monotonic()
    await asyncio.to_thread(run, 4, 7)  # no exception, and no wait on the dead store
    assert time.monotonic() - started < 1.0 and worker.waiting == 4
    redis.start()
    await asyncio.to_thread(run, 8, 10)
    await asyncio.to_thread(worker.complete, {"ok": True})
    await _until(lambda: worker.waiting == 0, 15)
    final = worker.outbox.record.seq
    assert final == 1 + 1 + 10 + 1
    await _until(lambda: viewer.seen[-1:] == [final], 10)
    assert viewer.seen == list(range(1, final + 1))
    await asyncio.wait_for(keeping_up, 1)
    snap = await page.invoke("Subscribe", job_id)
    assert [e["seq"] for e in snap["log"]] == list(range(1, final + 1)) and snap["state"] == "Completed"
    assert [e["step"] for e in snap["log"][2:12]] == list(range(1, 11))
    progress.close()


def test_a_batch_sent_again_after_a_lost_reply_is_not_recorded_twice(redis: DurableRedis) -> None:
    writer = RedisWriter(redis.url)
    record, events = connect(redis.url).job("j").outbox.record, []
    for _ in range(3):
        record, event = stepped(record, 1.0)
        events.append(event)
    assert writer.write("j", "w1", events).verdicts == (Verdict.ok,) * 3
    again = writer.write("j", "w1", events)
    assert again.verdicts == (Verdict.duplicate,) * 3 and again.seq == 3
    assert writer.write("j", "w2", events[:1]).verdicts == (Verdict.stale,)
    writer.close()


async def test_cancel_marks_the_record_and_calls_the_canceller(
    redis: DurableRedis, live: tuple[Live, RedisStore], page: HubClient,
) -> None:
    _, store = live
    asked: list[str] = []
    store.canceller = asked.append
    job_id = secrets.token_hex(6)
    worker = connect(redis.url).ajob(job_id)
    await worker.start(total=5)
    assert await page.invoke("Cancel", job_id) is True and asked == [job_id]
    with pytest.raises(JobCancelled):
        await worker.step()
    await worker.cancelled()
    assert (await page.invoke("Subscribe", job_id))["state"] == "Cancelled"


async def test_the_reaper_fails_a_job_whose_worker_stopped_beating(
    redis: DurableRedis, live: tuple[Live, RedisStore], page: HubClient,
) -> None:
    job_id = secrets.token_hex(6)
    worker = connect(redis.url).job(job_id)
    worker.start(total=5)
    worker.step()
    events: list[dict[str, Any]] = []
    page.on("progress", lambda event: events.append(event))
    await page.invoke("Subscribe", job_id)
    await _until(lambda: any(e["state"] == "Failed" for e in events), 5)
    assert events[-1]["error"].startswith("worker lost: no heartbeat") and events[-1]["seq"] == 3
    with pytest.raises(JobCancelled):
        worker.step()


async def _until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)
