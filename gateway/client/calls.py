"""What both client drivers do with the messages a session hands them: route them, complete calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..protocol.messages import Close, Completion, HubMessage, Invocation

OnInvocation = Callable[[str, list[Any]], None]
OnClose = Callable[[str | None], None]


class Calls:
    """The futures of the invocations that wait for their completion, by invocation id."""

    __slots__ = ("_pending", "_error")

    def __init__(self, error: type[Exception]) -> None:
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._error = error

    def expect(self, invocation_id: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[invocation_id] = future
        return future

    def forget(self, invocation_id: str) -> None:
        self._pending.pop(invocation_id, None)

    def complete(self, message: Completion) -> None:
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


def route(messages: list[HubMessage], calls: Calls, on_invocation: OnInvocation, on_close: OnClose) -> None:
    """Dispatch a session's messages: the server's calls, completions, and its Close."""
    for message in messages:
        if isinstance(message, Invocation):
            on_invocation(message.target, message.arguments)
        elif isinstance(message, Completion):
            calls.complete(message)
        elif isinstance(message, Close):
            on_close(message.error)
