"""What every transport shares: the interface, claiming a connection, and the output pump."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ..protocol import State
from ..server import eager, metrics
from ..server.asgi import Receive, Request, Send
from ..server.connection import ServerConnection

log = logging.getLogger("gateway")


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """What transports need from the gateway's configuration."""

    poll_timeout: float
    origin_allowed: Callable[[Request, str], bool] = field(default=lambda request, origin: False)


class Transport(Protocol):
    """One way of carrying a connection's records.

    ``persistent`` transports hold one stream for the connection's life: they get keep-alive pings,
    and their stream ending ends the connection unless it negotiated stateful reconnect. A
    non-persistent transport (long polling) comes and goes, and a new request supersedes a held one.
    ``binary``: whether it carries the Binary transfer format (a MessagePack hub protocol).
    """

    name: ClassVar[str]
    persistent: ClassVar[bool]
    binary: ClassVar[bool]

    def __init__(self, options: TransportOptions) -> None: ...

    async def serve(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        """Serve one stream of ``conn`` (the app has looked the connection up)."""
        ...


class TransportBase:
    """What the four transports share: a name, whether they persist, and the options they are made with."""

    name: ClassVar[str]
    persistent: ClassVar[bool] = True
    binary: ClassVar[bool] = True

    def __init__(self, options: TransportOptions) -> None:
        self.options = options


def claim(conn: ServerConnection, transport: Transport, *, resume: bool) -> int | None:
    """Attach a stream of ``transport`` to ``conn``; None when another stream holds it (409).

    A closed connection takes no stream: the stream only carries what was left for it (the Close
    message), in its own framing, and ends.
    """
    core = conn.core
    if core.state is State.CLOSED:
        return core.generation
    if core.attached:
        supersede = conn.stream == transport.name and not transport.persistent
        if not supersede and not (core.stateful and core.handshaken):
            return None
        log.info("connection %s: %s stream replaces the %s stream", conn.id, transport.name, conn.stream)
    replayed = core.replayed
    generation = core.attach(conn.now(), pings=transport.persistent, resume=resume, binary=transport.binary)
    _count(conn, transport.name, resume, core.replayed - replayed)
    conn.stream = conn.transport = transport.name
    conn.wake.set()
    conn.reschedule()
    return generation


def _count(conn: ServerConnection, name: str, resume: bool, replayed: int) -> None:
    """Metrics of a stream that attached: a fallback from the previous transport, a resume and its replay."""
    if conn.transport is not None and conn.transport != name:
        metrics.moved(conn.id, conn.transport, name, conn.core.handshaken)
    if resume and conn.core.handshaken:
        conn.resumes += 1
        metrics.resumes.add(1, {metrics.TRANSPORT: name})
        if replayed:
            metrics.replayed.add(replayed, {metrics.TRANSPORT: name})


def release(conn: ServerConnection, generation: int, transport: Transport) -> None:
    """The stream of ``generation`` ended; a dropped persistent stream may end the connection."""
    if not conn.core.detach(generation, conn.now()):
        return
    conn.stream = None
    conn.reschedule()
    if transport.persistent and not conn.core.stateful and conn.core.state is not State.CLOSED:
        log.info("connection %s: %s stream ended", conn.id, transport.name)
        conn.close()


class Stalled(Exception):
    """A write to the client was blocked for longer than the send timeout; the connection is closed."""


def _stalled(conn: ServerConnection, limit: float) -> Stalled:
    log.warning("connection %s closed: slow consumer (a write was blocked for %.0f s)", conn.id, limit)
    conn.close(f"slow consumer: a write was blocked for {limit:g} s")
    return Stalled()


async def within_send_timeout(conn: ServerConnection, write: Awaitable[None]) -> None:
    """Await one write (a close frame, a poll's response) for at most the send timeout.

    A coroutine is first run by hand: a write the socket takes at once (nearly all) costs no timer at all.
    """
    if isinstance(write, Coroutine):
        _, rest = eager.start(write)
        if rest is None:
            return
        write = rest
    limit = conn.core.limits.send_timeout
    timeout = asyncio.timeout(limit)
    try:
        async with timeout:
            await write
    except TimeoutError:
        if not timeout.expired():
            raise
        raise _stalled(conn, limit) from None


class _Watchdog:
    """Bounds every write of one stream by the send timeout with one timer per ``limit`` of writing,
    not one per write: a write notes when it began, and the timer, when it fires, looks at the write
    in flight. A client that reads nothing would otherwise hold the stream (and its outbox) forever."""

    __slots__ = ("_task", "_limit", "_loop", "since", "_handle", "fired")

    def __init__(self, limit: float) -> None:
        self._task = asyncio.current_task()
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self.since: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self.fired = False

    def arm(self) -> None:
        self.since = self._loop.time()
        if self._handle is None:
            self._handle = self._loop.call_later(self._limit, self._check)

    def _check(self) -> None:
        self._handle = None
        if self.since is None:
            return
        waited = self._loop.time() - self.since
        if waited < self._limit:
            self._handle = self._loop.call_later(self._limit - waited, self._check)
        elif self._task is not None:
            self.fired = True
            self._task.cancel()

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def pump(
    conn: ServerConnection, generation: int, write: Callable[[Any], Coroutine[Any, Any, None]],
    until: asyncio.Future[None],
) -> Coroutine[Any, Any, None]:
    """Write the connection's output (``str`` on a Text protocol, ``bytes`` on a Binary one) until it closes,
    a newer stream replaces this one, or ``until`` is done. Raises Stalled when a write blocks past the send timeout.

    While it waits, the stream is idle and ``conn.writer`` lets whoever queues output (a keep-alive ping, a
    fan-out) write it at once, without waking this task (see ``Pump.direct``).
    """
    return Pump(conn, generation, write, until).run()  # not a coroutine of its own: one frame less per stream


class Pump(_Watchdog):
    """One stream's output loop, and the direct writer it lends the connection while it waits; it is its own
    send-timeout watchdog (one object per held stream, not two)."""

    __slots__ = ("conn", "generation", "write", "until", "pending")

    def __init__(
        self, conn: ServerConnection, generation: int, write: Callable[[Any], Coroutine[Any, Any, None]],
        until: asyncio.Future[None],
    ) -> None:
        super().__init__(conn.core.limits.send_timeout)
        self.conn, self.generation, self.write, self.until = conn, generation, write, until
        self.pending: asyncio.Future[None] | None = None
        """A direct write that could not finish at once (the socket was full, or it failed): awaited next."""

    async def run(self) -> None:
        conn, core, wake = self.conn, self.conn.core, self.conn.wake
        # ``until`` sets the wake event itself, so a wait costs one future, not a task and an
        # asyncio.wait per wait (measured: ~20% of server CPU in a 1,000-client fan-out).
        self.until.add_done_callback(self._woken)
        try:
            while core.generation == self.generation:
                write: Awaitable[None] | None = self.pending
                if write is not None:
                    self.pending = None
                elif core.has_output:  # run by hand: a write the socket takes at once needs no watchdog
                    _, write = eager.start(self.write(core.take(conn.clock())))
                    if write is None:
                        if conn.room is not None:
                            conn.shrank()
                        continue
                elif core.state is State.CLOSED or self.until.done():
                    return
                else:
                    wake.clear()
                    conn.writer = writer = self.direct
                    try:
                        await wake.wait()
                    finally:
                        if conn.writer is writer:
                            conn.writer = None
                    continue
                self.arm()  # the send timeout bounds every write
                try:
                    await write
                except asyncio.CancelledError:
                    if not self.fired:
                        raise
                    raise self._stall() from None
                finally:
                    self.since = None
                if conn.room is not None:
                    conn.shrank()
        finally:
            self._end()

    def _woken(self, _: object) -> None:
        self.conn.wake.set()

    def _stall(self) -> Stalled:
        """The watchdog cancelled a write: the task goes on, to end the stream as stalled."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return _stalled(self.conn, self.conn.core.limits.send_timeout)

    def _end(self) -> None:
        self.disarm()
        self.until.remove_done_callback(self._woken)
        left = self.pending
        if left is not None:  # a direct write the pump never got to: cancelled, or its error retrieved
            if left.done() and not left.cancelled():
                left.exception()
            left.cancel()

    def direct(self) -> bool:
        """Write the output now, from the caller, while the pump waits; False when this stream cannot.

        The write is driven by hand: an ASGI server's send nearly always completes without suspending (the
        socket takes the bytes), and then no task is woken at all. One that suspends, or fails, is left to the
        pump, woken to await it under the send timeout before it writes anything else.
        """
        core = self.conn.core
        if self.pending is not None or core.generation != self.generation or core.state is State.CLOSED:
            return False
        coro = self.write(core.take(self.conn.clock()))
        try:
            step = coro.send(None)
        except StopIteration:
            if self.conn.room is not None:
                self.conn.shrank()
            return True
        except Exception as exc:  # the pump raises it, as it would have raised its own write's
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            self.pending = failed
        else:
            self.pending = asyncio.ensure_future(eager.Resumed(coro, step))
        self.conn.wake.set()
        return True


async def cancel(task: asyncio.Future[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
