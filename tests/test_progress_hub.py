"""ProgressHub on a real uvicorn, through the Python client: Subscribe, Watch, Cancel, the authorization hook,
bad input (unknown and non-string ids, another user's job, a huge message) and the reaper of a lost worker.
Jobs publish from the test's thread with the sync publisher, into the server's in-process store."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from live import Live, serve_gateways

from gateway import Gateway
from gateway.client import HubClient, HubError
from gateway.progress import JobCancelled, MemoryStore, Progress, ProgressHub, connect
from gateway.server.asgi import Request

REAPED_LEASE = 0.3


async def user_of(request: Request) -> str | None:
    return request.headers.get("x-user")


@pytest.fixture(scope="module")
def stores() -> dict[str, MemoryStore]:
    return {"/jobs": MemoryStore(), "/reaped": MemoryStore(lease=REAPED_LEASE)}


@pytest.fixture(scope="module")
def live(stores: dict[str, MemoryStore]) -> Iterator[Live]:
    gateways = {path: Gateway(ProgressHub.bind(store), name=path[1:], authenticate=user_of)
                for path, store in stores.items()}
    for path, gateway in gateways.items():
        stores[path].attach(gateway.clients)
    with serve_gateways(gateways) as server:
        yield server
        for store in stores.values():
            server.call(store.close)


@pytest.fixture
def progress(stores: dict[str, MemoryStore]) -> Progress:
    return connect(store=stores["/jobs"])


@pytest.fixture
async def page(live: Live) -> AsyncIterator[HubClient]:
    client = HubClient(live.url("/jobs"), transport="WebSockets", headers={"x-user": "ann"})
    await client.start()
    yield client
    await client.close()


def _job(progress: Progress, owner: str | None = None, steps: int = 0) -> str:
    job_id = secrets.token_hex(6)
    progress.job(job_id).create(total=steps or None, owner=owner)
    return job_id


async def test_subscribe_returns_the_snapshot_then_progress_calls_follow(page: HubClient, progress: Progress) -> None:
    job_id = _job(progress, steps=2)
    worker = progress.job(job_id)
    worker.start(total=2)
    live: list[dict[str, Any]] = []
    page.on("progress", lambda event: live.append(event))
    snap = await page.invoke("Subscribe", job_id)
    assert [e["state"] for e in snap["log"]] == ["Pending", "Processing"] and snap["seq"] == 2
    assert snap["logTruncated"] is False
    worker.step(message="one")
    worker.step(message="two")
    worker.complete({"rows": 2})
    await _until(lambda: len(live) == 3)
    assert [(e["seq"], e["state"], e["percent"]) for e in live] == [
        (3, "Processing", 50), (4, "Processing", 100), (5, "Completed", 100)]
    assert live[-1]["result"] == {"rows": 2}


async def test_watch_streams_the_log_then_live_events_to_the_final_state(page: HubClient, progress: Progress) -> None:
    job_id = _job(progress, steps=3)
    worker = progress.job(job_id)
    worker.start(total=3)
    seen: list[int] = []

    async def watch() -> None:
        async for event in page.stream("Watch", job_id):
            seen.append(event["seq"])

    task = asyncio.ensure_future(watch())
    await _until(lambda: len(seen) == 2)
    for _ in range(3):
        worker.step()
    worker.complete()
    await asyncio.wait_for(task, 5)
    assert seen == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(("argument", "error"), [
    ("no-such-job", "unknown job 'no-such-job'"),
    (12345, "a job id is a string of 1 to 128 characters"),
    ("", "a job id is a string of 1 to 128 characters"),
    ("x" * 129, "a job id is a string of 1 to 128 characters"),
    (None, "a job id is a string of 1 to 128 characters"),
])
@pytest.mark.parametrize("method", ["Subscribe", "Cancel"])
async def test_bad_job_ids_are_refused_with_a_reason(page: HubClient, method: str, argument: Any, error: str) -> None:
    with pytest.raises(HubError, match=error.replace("(", r"\(")):
        await page.invoke(method, argument)


async def test_another_users_job_is_refused_by_the_hook(live: Live, page: HubClient, progress: Progress) -> None:
    job_id = _job(progress, owner="ann")
    bob = HubClient(live.url("/jobs"), transport="LongPolling", headers={"x-user": "bob"})
    await bob.start()
    try:
        for method in ("Subscribe", "Cancel"):
            with pytest.raises(HubError, match="not allowed"):
                await bob.invoke(method, job_id)
        with pytest.raises(HubError, match="not allowed"):
            async for _ in bob.stream("Watch", job_id):
                pass
    finally:
        await bob.close()
    assert (await page.invoke("Subscribe", job_id))["state"] == "Pending"  # its owner may


async def test_the_hook_is_not_a_method_clients_may_call(page: HubClient) -> None:
    with pytest.raises(HubError, match="Unknown hub method 'Authorize'"):
        await page.invoke("Authorize", "x", "ann")


async def test_a_huge_message_reaches_the_page_cut_to_1000_characters(page: HubClient, progress: Progress) -> None:
    job_id = _job(progress)
    worker = progress.job(job_id)
    worker.step(10, "é" * 1_000_000)
    snap = await page.invoke("Subscribe", job_id)
    assert len(snap["message"]) == 1000 and snap["message"].endswith("…") and snap["truncated"] is True


async def test_cancel_reaches_the_worker_at_its_next_step(page: HubClient, progress: Progress) -> None:
    job_id = _job(progress, steps=10)
    worker = progress.job(job_id)
    worker.start()
    assert await page.invoke("Cancel", job_id) is True
    with pytest.raises(JobCancelled):
        worker.step()
    worker.cancelled()
    snap = await page.invoke("Subscribe", job_id)
    assert snap["state"] == "Cancelled" and [e["seq"] for e in snap["log"]] == [1, 2, 3, 4]
    assert await page.invoke("Cancel", job_id) is False  # final already


async def test_a_worker_that_stops_beating_is_failed_by_the_reaper(live: Live, stores: dict[str, MemoryStore]) -> None:
    progress = connect(store=stores["/reaped"])
    lost, alive = secrets.token_hex(6), secrets.token_hex(6)
    client = HubClient(live.url("/reaped"), transport="ServerSentEvents")
    await client.start()
    events: list[dict[str, Any]] = []
    client.on("progress", lambda event: events.append(event))
    try:
        for job_id in (lost, alive):
            progress.job(job_id).create()
            await client.invoke("Subscribe", job_id)
        progress.job(lost).start()
        keeper = progress.job(alive)
        keeper.start()
        for _ in range(8):  # 0.8 s: past the lease for the silent one
            await asyncio.sleep(0.1)
            keeper.heartbeat()
        await _until(lambda: any(e["jobId"] == lost and e["state"] == "Failed" for e in events))
        failed = next(e for e in events if e["jobId"] == lost and e["state"] == "Failed")
        assert failed["error"].startswith("worker lost: no heartbeat for") and failed["seq"] == 3
        assert (await client.invoke("Subscribe", alive))["state"] == "Processing"
        late = progress.job(lost, raise_on_cancel=True)
        with pytest.raises(JobCancelled):  # the lost worker comes back: its steps are refused, and it is told
            late.step()
    finally:
        await client.close()


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
    assert predicate()
