"""The demo's hubs: jobs (progress), echo (round trips, pushes) and chat."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ..hub import Hub, HubError
from .jobs import Jobs


def job_group(job_id: str) -> str:
    return f"job:{job_id}"


class JobsHub(Hub):
    """``Subscribe(jobId)`` returns the job's state and step log, then ``progress`` calls follow."""

    jobs: Jobs  # set by the demo app

    async def subscribe(self, job_id: str) -> dict[str, Any]:
        if not isinstance(job_id, str) or not 0 < len(job_id) <= 64:
            raise HubError("a job id is a short string")
        await self.groups.add(self.context.connection_id, job_group(job_id))
        snapshot = await self.jobs.snapshot(job_id)
        if snapshot is None:
            await self.groups.remove(self.context.connection_id, job_group(job_id))
            raise HubError(f"unknown job {job_id!r}")
        return snapshot

    async def unsubscribe(self, job_id: str) -> None:
        await self.groups.remove(self.context.connection_id, job_group(str(job_id)))

    async def cancel(self, job_id: str) -> bool:
        return await self.jobs.cancel(str(job_id))


class EchoHub(Hub):
    """Round trips and pushes, for benchmarks and outside checks."""

    async def echo(self, value: Any) -> Any:
        return value

    async def echo_push(self, value: Any) -> None:
        await self.clients.caller.send("echo", value)

    async def join(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, str(group))

    async def leave(self, group: str) -> None:
        await self.groups.remove(self.context.connection_id, str(group))

    async def push_group(self, group: str, count: int) -> int:
        """Send ``count`` ordered ``burst`` messages ``{"i": 1..count, "t": time}`` to a group."""
        target = self.clients.group(str(group))
        for i in range(1, int(count) + 1):
            await target.send("burst", {"i": i, "t": time.time()})
        return int(count)

    async def whoami(self) -> dict[str, Any]:
        return {"connectionId": self.context.connection_id, "user": self.context.user}


class ChatHub(Hub):
    """A room over the hub: the last 100 messages as history."""

    history: dict[str, deque[dict[str, Any]]] = {}

    async def join(self, room: str) -> list[dict[str, Any]]:
        room = str(room)[:64]
        await self.groups.add(self.context.connection_id, f"room:{room}")
        return list(self.history.get(room, ()))

    async def send_message(self, room: str, name: str, text: str) -> None:
        room = str(room)[:64]
        message = {"room": room, "name": str(name)[:40], "text": str(text)[:2000], "at": time.time()}
        self.history.setdefault(room, deque(maxlen=100)).append(message)
        await self.clients.group(f"room:{room}").send("message", message)
