"""The client-to-server half of the HTTP transports: one POST at a time, what waits goes together.

The gateway answers 409 to a second concurrent POST on a connection, so texts sent while a POST is
in flight wait and go together in the next one, in the order they were sent. The Socket.IO polling
client of the benchmarks batches the same way, with its own separator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Post = Callable[[bytes], Awaitable[None]]
"""Sends one body; raises what went wrong. Texts are joined as UTF-8; bytes (a binary protocol's) as they are."""


class PostBatcher:
    """Batches texts into POSTs made by ``post``, one at a time, with no task while idle.

    ``send`` does not wait; ``send_and_wait`` returns when the POST that carried the text has
    answered (and raises its error). Errors of POSTs nobody waits for go to ``on_error``.
    """

    __slots__ = ("_post", "_separator", "_on_error", "_outbox", "_waiters", "_task", "_retired")

    def __init__(self, post: Post, *, separator: str = "", on_error: Callable[[Exception], None] | None = None) -> None:
        self._post = post
        self._separator = separator
        self._on_error = on_error
        self._outbox: list[str | bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None  # held here: the loop keeps only weak references
        self._retired = False

    def send(self, text: str | bytes) -> None:
        if self._retired:
            return
        self._outbox.append(text)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def send_and_wait(self, text: str | bytes) -> None:
        if self._retired:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self.send(text)
        await future

    def retire(self) -> None:
        """Drop what still waits and send nothing more (a resume's replay carries it again)."""
        self._retired = True
        self._outbox.clear()
        _settle(self._waiters, None)
        self._waiters = []

    async def _run(self) -> None:
        try:
            while self._outbox and not self._retired:
                outbox = self._outbox
                binary = not all(isinstance(item, str) for item in outbox)
                body = b"".join(_bytes(item) for item in outbox) if binary else self._separator.join(
                    item for item in outbox if isinstance(item, str)).encode("utf-8")
                waiters = self._waiters
                self._outbox, self._waiters = [], []
                try:
                    await self._post(body)
                except Exception as exc:
                    _settle(waiters, exc)
                    if self._on_error is not None:
                        self._on_error(exc)
                else:
                    _settle(waiters, None)
        finally:
            self._task = None


def _bytes(item: str | bytes) -> bytes:
    return item.encode("utf-8") if isinstance(item, str) else item


def _settle(waiters: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in waiters:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
