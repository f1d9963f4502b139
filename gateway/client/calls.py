"""What both client drivers do with the messages a session hands them: route them, complete calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from ..protocol.messages import Close, Completion, HubMessage, Invocation, StreamItem

OnInvocation = Callable[[str, list[Any]], None]
OnRequest = Callable[[Invocation], None]
OnClose = Callable[[str | None], None]
Delivery = tuple[Literal["item", "end", "error"], Any]
"""What a server stream's queue carries: an item, its end, or the exception that ended it."""


class Calls:
    """The futures of the invocations that wait for their completion, by invocation id."""

    __slots__ = ("_pending", "_streams", "_error")

    def __init__(self, error: type[Exception]) -> None:
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._streams: dict[str, asyncio.Queue[Delivery]] = {}
        self._error = error

    def expect(self, invocation_id: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[invocation_id] = future
        return future

    def forget(self, invocation_id: str) -> None:
        self._pending.pop(invocation_id, None)
        self._streams.pop(invocation_id, None)

    def expect_stream(self, invocation_id: str) -> asyncio.Queue[Delivery]:
        """The queue of a server stream's items, then its end (or error)."""
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._streams[invocation_id] = queue
        return queue

    def item(self, message: StreamItem) -> None:
        queue = self._streams.get(message.invocation_id)
        if queue is not None:
            queue.put_nowait(("item", message.item))

    def complete(self, message: Completion) -> None:
        queue = self._streams.pop(message.invocation_id, None)
        if queue is not None:
            error = None if message.error is None else self._error(message.error)
            queue.put_nowait(("end", None) if error is None else ("error", error))
            return
        future = self._pending.pop(message.invocation_id, None)
        if future is not None and not future.done():
            if message.error is not None:
                future.set_exception(self._error(message.error))
            else:
                future.set_result(message.result)

    def fail(self, error: Exception) -> None:
        """The connection ended: every call still waiting fails with ``error``."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        for queue in self._streams.values():
            queue.put_nowait(("error", error))
        self._streams.clear()


def route(
    messages: list[HubMessage], calls: Calls, on_invocation: OnInvocation, on_close: OnClose,
    on_request: OnRequest | None = None,
) -> None:
    """Dispatch a session's messages: the server's calls (``on_request`` for those awaiting a client result),
    stream items, completions, and its Close."""
    for message in messages:
        if isinstance(message, Invocation):
            if message.invocation_id is not None and on_request is not None:
                on_request(message)
            else:
                on_invocation(message.target, message.arguments)
        elif isinstance(message, StreamItem):
            calls.item(message)
        elif isinstance(message, Completion):
            calls.complete(message)
        elif isinstance(message, Close):
            on_close(message.error)
