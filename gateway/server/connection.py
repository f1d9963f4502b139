"""The I/O side of one connection: the sans-IO core plus a wake-up event and its identity."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..protocol import Connection, OutboxOverflow, Received, State
from ..protocol.messages import TRACKABLE, HubMessage, is_trackable
from .wire import Wire

log = logging.getLogger("gateway")

Dispatch = Callable[["ServerConnection", Received], Awaitable[None]]


class Wakeup:
    """What a stream waits on until there is output: ``asyncio.Event``'s surface at a tenth of its size
    (no deque, no dict; one future only while someone waits)."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> None:
        if self._flag:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:  # a stream being replaced and its successor, for a moment
            self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None


class ServerConnection:
    """A negotiated connection, served by whichever transport streams attach to it."""

    __slots__ = (
        "id", "token", "core", "wake", "stream", "transport", "user", "items", "groups", "posting", "clock",
        "due", "feeding", "wire", "writer", "leaving", "resumes", "_fed", "room", "_dispatch", "_on_close", "_schedule",
        "moved",
    )

    def __init__(
        self, connection_id: str, token: str, core: Connection, clock: Callable[[], float],
        dispatch: Dispatch, on_close: Callable[[ServerConnection], None], user: str | None = None,
        schedule: Callable[[ServerConnection], None] = lambda conn: None,
    ) -> None:
        self.id = connection_id
        self.token = token
        self.core = core
        self.wake = Wakeup()
        self.stream: str | None = None  # the transport of the stream attached now
        self.transport: str | None = None  # the transport of the latest stream, attached or not
        self.user = user
        self.items: dict[str, Any] | None = None  # made on first use (``Context.items``)
        self.groups: frozenset[str] = frozenset()  # replaced on a join or leave: none costs nothing
        self.posting = False  # a POST is being handled: another one meanwhile is a 409
        self.clock = clock
        self.due = float("inf")  # when the gateway's deadline heap next wakes this connection
        self.feeding = False  # ``receive`` is parsing or dispatching: another feeder waits its turn
        self.wire = Wire()  # what it cost on the network; negotiate's request and answer included
        self.writer: Callable[[], bool] | None = None
        """While the attached stream waits for output: writes what is queued now (False if it cannot)."""
        self._fed: asyncio.Future[None] | None = None  # created only when a feeder has to wait
        self.room: asyncio.Future[None] | None = None
        """Done when the output may have shrunk (a write, an Ack, the close); made only while a stream waits."""
        self.leaving = False  # this process drains: the client is to resume elsewhere
        self.resumes = 0  # streams that resumed it in this process
        self.moved: Callable[[str | bytes], None] | None = None
        """Once handed over to another process: sends a record pushed here after all to its new holder."""
        self._dispatch = dispatch
        self._on_close = on_close
        self._schedule = schedule

    def now(self) -> float:
        return self.clock()

    def reschedule(self) -> None:
        """The core changed state (a stream came or went, the handshake): its deadlines may be earlier now."""
        self._schedule(self)

    async def receive(self, data: str | bytes) -> None:
        """Feed client data (text, or bytes on a Binary protocol) to the core and dispatch what it yields.
        Raises ProtocolError.

        One feeder at a time: when a resumed stream's first data arrives while the replaced stream's reader
        is still dispatching what it read, the new data waits, so that messages are dispatched in order.
        Many records are handled a batch at a time, with a turn of the event loop between batches.
        """
        while self.feeding:
            await self._turn()
        self.feeding = True
        core = self.core
        try:
            received = core.receive(data, self.clock())
            while True:
                self._noted(received)
                if received.messages or received.handshake:
                    await self._dispatch(self, received)
                if not received.more:
                    return
                await asyncio.sleep(0)
                if core.state is State.CLOSED:
                    return
                received = core.receive("", self.clock())
        finally:
            self.feeding = False
            fed, self._fed = self._fed, None
            if fed is not None and not fed.done():
                fed.set_result(None)
            if self.room is not None:
                self.shrank()

    def _noted(self, received: Received) -> None:
        """What one batch changes before its dispatch: the wake-up, the deadlines, the count of data messages."""
        if received.unknown is not None:
            log.info("connection %s: ignored a message of unknown type %d (further ones are ignored silently)",
                     self.id, received.unknown)
        if self.core.has_output:
            self.wake.set()
        if received.handshake:
            self.reschedule()
        messages = received.messages
        if messages:
            self.wire.messages_in += (isinstance(messages[0], TRACKABLE) if len(messages) == 1
                                      else sum(isinstance(m, TRACKABLE) for m in messages))

    async def _turn(self) -> None:
        """Wait until the feeder in progress is done."""
        if self._fed is None:
            self._fed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._fed)

    async def drained(self, limit: int) -> None:
        """Wait until at most ``limit`` bytes are unsent or unacknowledged, or the connection closed."""
        core = self.core
        while core.buffered > limit and core.state is not State.CLOSED:
            if self.room is None:
                self.room = asyncio.get_running_loop().create_future()
            await asyncio.shield(self.room)

    def shrank(self) -> None:
        """The output may be smaller now: wake whoever waits in ``drained``."""
        room, self.room = self.room, None
        if room is not None and not room.done():
            room.set_result(None)

    def push(self, record: str | bytes, *, trackable: bool = True, direct: bool = False) -> None:
        """Queue a record encoded with the connection's protocol; a consumer too slow to keep up is closed.

        ``direct``: write it at once if the stream is idle (a fan-out: one record for each of many connections);
        otherwise the stream is woken, and writes what the caller queues meanwhile as one payload.
        """
        if self.moved is not None:  # an invocation that was running when the connection left
            if trackable:
                self.moved(record)
            return
        try:
            self.core.push(record, trackable=trackable)
        except OutboxOverflow as exc:
            log.warning("connection %s closed: slow consumer (%s)", self.id, exc)
            self.close("slow consumer: too many unacknowledged messages")
            return
        if trackable:
            self.wire.messages_out += 1
        if direct:
            self.flush()
        else:
            self.wake.set()

    def flush(self) -> None:
        """Output waits: the idle stream writes it now, from the caller; a busy one (or none) is woken."""
        writer = self.writer
        if writer is None or not writer():
            self.wake.set()

    def push_message(self, message: HubMessage) -> None:
        """Queue one message for the client, encoded with the connection's hub protocol."""
        self.push(self.core.protocol.encode(message), trackable=is_trackable(message))

    def close(self, error: str | None = None, *, allow_reconnect: bool = False) -> None:
        """Close for good: the client gets a Close message if a stream can carry it."""
        if self.core.state is State.CLOSED:
            return
        self.core.close(error, allow_reconnect=allow_reconnect)
        self.wake.set()
        self.shrank()
        self._on_close(self)

    def cut(self) -> bool:
        """End the stream attached now as a network drop would (a demo's "cut", a test's): a connection with
        stateful reconnect waits for its client to resume, any other one closes. False if no stream was attached."""
        if not self.core.attached:
            return False
        if not self.core.stateful:
            self.close("the stream was cut")
            return True
        log.info("connection %s: its %s stream is cut", self.id, self.stream)
        self.core.cut(self.now())
        self.stream = None
        self.wake.set()
        self.reschedule()
        return True

    def let_go(self) -> None:
        """This process drains: end the attached stream, keep the connection for its client to resume on
        another process (which takes it over through the backplane)."""
        self.leaving = True
        self.cut()

    def hand_over(self, follow: Callable[[str | bytes], None]) -> None:
        """This process lets the connection go to another: its streams end, the client is told nothing, and
        what is pushed here from now on goes to ``follow``."""
        self.moved = follow
        self.core.close("handed over", notify=False)
        self.wake.set()
        self.shrank()

    def __repr__(self) -> str:
        return f"<ServerConnection {self.id} {self.core.state.value} {self.stream}>"
