"""The demo's hubs: jobs (progress), echo (round trips, pushes) and chat."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from typing import Any

from ..hub import Hub, HubError
from .jobs import Jobs

MAX_NAME = 64  # group, room and job names
MAX_PUSH = 1000  # messages one PushGroup call sends
PUSH_BATCH = 50  # PushGroup lets the event loop run between batches of this many sends
MAX_ROOMS = 100  # chat rooms whose history is kept (the least recently used is forgotten)


def job_group(job_id: str) -> str:
    return f"job:{job_id}"


def _name(value: object, what: str) -> str:
    """A group or room name from a client: a string of 1 to MAX_NAME characters."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise HubError(f"a {what} is a string of 1 to {MAX_NAME} characters")
    return value


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
        await self.groups.add(self.context.connection_id, _name(group, "group"))

    async def leave(self, group: str) -> None:
        await self.groups.remove(self.context.connection_id, _name(group, "group"))

    async def push_group(self, group: str, count: int) -> int:
        """Send ``count`` (1 to MAX_PUSH) ordered ``burst`` messages ``{"i": 1..count, "t": time}`` to a group."""
        target = self.clients.group(_name(group, "group"))
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_PUSH:
            raise HubError(f"count must be an integer from 1 to {MAX_PUSH}")
        for i in range(1, count + 1):
            await target.send("burst", {"i": i, "t": time.time()})
            if i % PUSH_BATCH == 0:
                await asyncio.sleep(0)  # an in-process send never yields: let the others run
        return count

    async def whoami(self) -> dict[str, Any]:
        return {"connectionId": self.context.connection_id, "user": self.context.user}


class ChatHub(Hub):
    """A room over the hub: the last 100 messages as history, kept for the MAX_ROOMS rooms used last."""

    history: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()

    async def join(self, room: str) -> list[dict[str, Any]]:
        room = _name(room, "room")
        await self.groups.add(self.context.connection_id, f"room:{room}")
        return list(self.history.get(room, ()))

    async def send_message(self, room: str, name: str, text: str) -> None:
        room = _name(room, "room")
        message = {"room": room, "name": str(name)[:40], "text": str(text)[:2000], "at": time.time()}
        self._room(room).append(message)
        await self.clients.group(f"room:{room}").send("message", message)

    def _room(self, room: str) -> deque[dict[str, Any]]:
        history = self.history
        if room in history:
            history.move_to_end(room)
            return history[room]
        if len(history) >= MAX_ROOMS:
            history.popitem(last=False)
        history[room] = deque(maxlen=100)
        return history[room]
