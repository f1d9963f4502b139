"""The demo's hubs: jobs (progress), echo (round trips, pushes) and chat."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Any

from ..hub import Hub, HubError
from ..progress import ProgressHub

MAX_NAME = 64  # group and room names
MAX_PUSH = 1000  # messages one PushGroup call sends
PUSH_BATCH = 50  # PushGroup lets the event loop run between batches of this many sends
MAX_ROOMS = 100  # chat rooms whose history is kept (the least recently used is forgotten)
MAX_COUNT = 10_000  # items one Counter stream sends
MAX_DELAY_MS = 1_000  # Counter's delay between items
MAX_SUM_ITEMS = 100_000  # numbers one Sum stream may carry
ASK_TIMEOUT = 10.0  # seconds AskClient waits for the client's answer


def _bounded(value: object, what: str, high: float, *, integer: bool = False) -> float:
    """A number from a client, from 0 to ``high`` (an integer if asked)."""
    kinds = (int,) if integer else (int, float)
    if not isinstance(value, kinds) or isinstance(value, bool) or not 0 <= value <= high:
        raise HubError(f"{what} must be {'an integer' if integer else 'a number'} from 0 to {high}")
    return value


def _name(value: object, what: str) -> str:
    """A group or room name from a client: a string of 1 to MAX_NAME characters."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise HubError(f"a {what} is a string of 1 to {MAX_NAME} characters")
    return value


class JobsHub(ProgressHub):
    """``Subscribe(jobId)`` returns the job's state and step log, then ``progress`` calls follow; ``Watch`` and
    ``Cancel`` too (see ``ProgressHub``). The demo binds it to its store."""


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

    async def counter(self, count: int, delay_ms: float) -> AsyncIterator[int]:
        """A server stream of ``0 .. count-1`` (count <= MAX_COUNT), ``delay_ms`` (<= MAX_DELAY_MS) apart."""
        count = int(_bounded(count, "count", MAX_COUNT, integer=True))
        delay = _bounded(delay_ms, "delayMs", MAX_DELAY_MS) / 1000
        for i in range(count):
            if i and delay:
                await asyncio.sleep(delay)
            yield i

    async def sum(self, stream: AsyncIterator[float]) -> float:
        """The sum of a client stream of numbers (at most MAX_SUM_ITEMS of them)."""
        total: float = 0
        items = 0
        async for value in stream:
            items += 1
            if items > MAX_SUM_ITEMS:
                raise HubError(f"a stream to Sum carries at most {MAX_SUM_ITEMS} numbers")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise HubError("Sum takes a stream of numbers")
            total += value
        return total

    async def ask_client(self, method: str, arg: Any) -> Any:
        """Invoke ``method(arg)`` on the caller as a client result; its answer is the result."""
        return await self.clients.caller.invoke(_name(method, "method"), arg, timeout=ASK_TIMEOUT)


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
