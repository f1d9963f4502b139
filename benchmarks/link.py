"""A userspace link emulator: an asyncio TCP relay with latency and jitter, a bandwidth cap, periodic stalls and
periodic cuts, between a client and a server on 127.0.0.1.

Each direction is a queue: a chunk read at ``t`` leaves the link when the link is free again (the cap serialises
the bytes) plus half the round-trip time plus a jitter, never before the chunk ahead of it (TCP keeps order).
A stall holds every delivery for its length; a cut resets every connection open through the link, with whatever
bytes were in flight lost, as a dropped network does.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    """A link: ``rtt`` and ``jitter`` in seconds, ``mbit`` per second each way (0: no cap), a stall of ``stall``
    seconds every ``stall_every`` seconds, a cut every ``cut_every`` seconds (0: never)."""

    name: str
    rtt: float = 0.0
    jitter: float = 0.0
    mbit: float = 0.0
    stall_every: float = 0.0
    stall: float = 0.0
    cut_every: float = 0.0


@dataclass
class _Direction:
    free_at: float = 0.0  # when the link has sent what it holds
    last_due: float = 0.0  # the latest delivery time given, to keep the order
    bytes: int = 0


@dataclass
class Link:
    """A relay from ``port`` to ``upstream_port`` that behaves like ``profile``; ``start()`` then ``stop()``."""

    profile: Profile
    upstream_port: int
    seed: int = 1
    port: int = 0
    cuts: list[float] = field(default_factory=list)
    """When each cut happened (loop time)."""
    up: _Direction = field(default_factory=_Direction)
    down: _Direction = field(default_factory=_Direction)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _stalled_until: float = 0.0

    async def start(self) -> None:
        self._random = random.Random(self.seed)
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        if self.profile.cut_every:
            self._spawn(self._every(self.profile.cut_every, self.cut))
        if self.profile.stall_every:
            self._spawn(self._every(self.profile.stall_every, self._stall))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        self.cut(record=False)

    def cut(self, record: bool = True) -> None:
        """Reset every connection open through the link."""
        if record:
            self.cuts.append(asyncio.get_running_loop().time())
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def _stall(self) -> None:
        self._stalled_until = asyncio.get_running_loop().time() + self.profile.stall

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _every(seconds: float, action: object) -> None:
        while True:
            await asyncio.sleep(seconds)
            action()  # type: ignore[operator]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer, self.up), self._pipe(up_reader, writer, self.down))
        finally:
            self._writers -= {writer, up_writer}

    def _due(self, direction: _Direction, size: int, now: float) -> float:
        profile = self.profile
        direction.bytes += size
        send_time = size * 8 / (profile.mbit * 1e6) if profile.mbit else 0.0
        direction.free_at = max(direction.free_at, now) + send_time
        due = direction.free_at + profile.rtt / 2 + (self._random.uniform(0, profile.jitter) if profile.jitter else 0)
        direction.last_due = max(due, direction.last_due)
        return direction.last_due

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: _Direction) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        deliverer = asyncio.ensure_future(self._deliver(queue, writer))
        try:
            while data := await reader.read(65536):
                queue.put_nowait((self._due(direction, len(data), loop.time()), data))
        except (OSError, RuntimeError):
            pass
        queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await deliverer

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - loop.time(), self._stalled_until - loop.time()))
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.transport.abort()
