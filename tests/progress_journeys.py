"""The journeys both queue suites run: a real gateway server (the demo, on uvicorn), real worker processes of one
queue, a real redis-server, and the project's Python client on a chosen transport.

A page's view of a job is the snapshot ``Subscribe`` returns, then the live ``progress`` events whose ``seq`` is
above the snapshot's (the contract's rule): :class:`Watcher` applies exactly that rule, and keeps what it dropped.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from live import Live, request

from gateway.client import HubClient

FINAL = ("Completed", "Failed", "Cancelled")


def start_job(live: Live, steps: int, step_ms: int, fail_at: int | None = None) -> str:
    """``POST /jobs``: the new job's id."""
    body = {"steps": steps, "step_ms": step_ms, **({"fail_at": fail_at} if fail_at else {})}
    reply = request(live.port, "POST", "/jobs", body=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"})
    assert reply.status == 202, (reply.status, reply.body)
    job_id: str = reply.json()["id"]
    return job_id


class Watcher:
    """A page watching one job: the snapshot's log, then every live event past the snapshot's seq."""

    def __init__(self, live: Live, transport: str) -> None:
        self.client = HubClient(live.url("/hubs/jobs"), transport=transport)
        self.live: list[dict[str, Any]] = []
        self.snapshot: dict[str, Any] = {}
        self.client.on("progress", self.live.append)

    async def __aenter__(self) -> Watcher:
        await self.client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def subscribe(self, job_id: str) -> dict[str, Any]:
        self.snapshot = await self.client.invoke("Subscribe", job_id)
        return self.snapshot

    def events(self) -> list[dict[str, Any]]:
        """What the page shows: the snapshot's log, then the live events it did not already hold."""
        last = self.snapshot.get("seq", 0)
        return [*self.snapshot.get("log", []), *(e for e in self.live if e["seq"] > last)]

    def state(self) -> str:
        events = self.events()
        return str(events[-1]["state"]) if events else ""

    async def until(self, predicate: Any, timeout: float) -> float:
        """Wait until ``predicate(events)`` holds; the seconds it took."""
        began = time.monotonic()
        while not predicate(self.events()):
            if time.monotonic() - began > timeout:
                raise AssertionError(f"timed out after {timeout} s; last events: {self.events()[-3:]}")
            await asyncio.sleep(0.01)
        return time.monotonic() - began

    async def until_final(self, timeout: float) -> float:
        return await self.until(lambda events: bool(events) and events[-1]["state"] in FINAL, timeout)

    async def until_step(self, step: int, timeout: float = 20.0) -> float:
        return await self.until(lambda events: any(e.get("step", 0) >= step for e in events), timeout)


def assert_every_step_once(events: list[dict[str, Any]], steps: int) -> None:
    """seq 1, 2, 3 ... with no gap or repeat, steps 1..``steps`` each once and in order, and Completed last."""
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), seqs
    stepped = [e["step"] for e in events if e["state"] == "Processing" and e.get("step")]
    assert stepped == list(range(1, steps + 1)), stepped
    assert events[-1]["state"] == "Completed" and events[-1]["percent"] == 100, events[-1]


async def twenty_steps(live: Live, transport: str, steps: int = 20) -> None:
    """A job subscribed to mid-run shows every step once, in order, on ``transport``."""
    async with Watcher(live, transport) as page:
        job_id = start_job(live, steps, 40)
        await asyncio.sleep(0.15)  # the job is (most likely) under way: the snapshot and live events meet
        await page.subscribe(job_id)
        await page.until_final(30)
        await asyncio.sleep(0.2)  # nothing may follow the final state
        assert_every_step_once(page.events(), steps)
        assert page.client.transport == transport


async def cancel_stops_the_task(live: Live, transport: str = "WebSockets") -> tuple[float, dict[str, Any]]:
    """Cancel mid-job: Cancelled within 2 s, and no step after it; (seconds, the last event)."""
    async with Watcher(live, transport) as page:
        job_id = start_job(live, 100, 100)
        await page.subscribe(job_id)
        await page.until_step(2)
        assert await page.client.invoke("Cancel", job_id) is True
        took = await page.until_final(5)
        last = page.events()[-1]
        assert last["state"] == "Cancelled", last
        assert took < 2.0, f"the task stopped {took:.2f} s after Cancel"
        await asyncio.sleep(0.5)
        assert page.events()[-1] == last, "progress after Cancelled: the task kept running"
        return took, last


async def killed_worker_fails(live: Live, kill: Any, lease: float, transport: str = "WebSockets") -> float:
    """SIGKILL the worker mid-job: Failed with a 'worker lost' reason within the lease (and the reaper's tick)."""
    async with Watcher(live, transport) as page:
        job_id = start_job(live, 100, 100)
        await page.subscribe(job_id)
        await page.until_step(2)
        kill()
        took = await page.until_final(lease * 2 + 2)
        last = page.events()[-1]
        assert last["state"] == "Failed" and "worker lost" in str(last.get("error")), last
        assert took < lease + 1.5, f"Failed {took:.2f} s after the kill (lease {lease} s)"
        return took


async def late_subscriber(live: Live, transport: str = "WebSockets", steps: int = 20) -> None:
    """Subscribing after completion gives 100 % and the whole log at once."""
    async with Watcher(live, transport) as first:
        job_id = start_job(live, steps, 5)
        await first.subscribe(job_id)
        await first.until_final(30)
    async with Watcher(live, transport) as late:
        snapshot = await late.subscribe(job_id)
        assert snapshot["state"] == "Completed" and snapshot["percent"] == 100
        assert_every_step_once(snapshot["log"], steps)
        await asyncio.sleep(0.2)
        assert late.live == []


async def long_step_outlives_the_lease(live: Live, lease: float, transport: str = "WebSockets") -> None:
    """A step longer than the lease: the worker's heartbeat keeps the job alive, and it completes."""
    async with Watcher(live, transport) as page:
        await page.subscribe(start_job(live, 1, int(lease * 1500)))
        await page.until_final(lease * 3)
        assert page.state() == "Completed", page.events()[-1]
