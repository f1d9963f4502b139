"""The Redis backplane: several processes, any of which can serve any request of any connection.

Theory of operation
-------------------
Every process subscribes, on one pub/sub connection, to ``{prefix}:all`` and to its own
``{prefix}:node:{id}``. One connection means one order: every process sees the messages of
``:all`` in the same order, which is what makes a handover exact.

* A send (all, group, user, connection) is published on ``:all``; every process delivers it to
  its own connections. Nothing is delivered before it comes back from Redis, so all processes
  agree on the order of sends.
* Group changes for a connection held here apply at once; others go on ``:all`` and the holder
  applies them.
* A token directory (``{prefix}:tok:{hub}:{sha256(token)}`` → holder and connection id) lets any
  process find a connection. Tokens themselves never reach Redis.
* A stream request for a connection held elsewhere moves the connection here: this process
  publishes a *handover* marker on ``:all``. The holder, when the marker reaches it, snapshots the
  connection (queued and unacknowledged records, sequence counters, groups, user) and drops it;
  this process buffers every send from its own sight of the marker on. Sends before the marker are
  in the snapshot, sends after it in the buffer: none lost, none twice.
* POST and DELETE for a connection held elsewhere are forwarded to the holder and answered from it,
  so a long poll held here is not moved away by the client's sends.
* When Redis is down, sends reach this process's connections only, and handovers and forwards
  fail (clients negotiate afresh). ``healthy`` reports it; delivery across processes resumes
  when Redis is back.
* Pub/sub does not replay what was published while this process was not subscribed. When the
  listener is subscribed again after an outage, each ``on_recovered`` callback is given the
  ``Outage`` (when it began, and the groups with connections here) and returns the sends this
  process missed, read from a durable record (the progress store's); they are delivered here only,
  before any message that came after the new subscription, so no page sees a later one first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import metrics
from redis.exceptions import RedisError

from ..protocol.broadcast import Broadcast
from .base import LocalDelivery, LocalNode
from .clients import HubClients
from .messages import (
    ConnectionState,
    Forward,
    ForwardOp,
    GroupChange,
    Handover,
    HandoverState,
    Message,
    Reply,
    Send,
    Target,
    decode,
    encode,
)

log = logging.getLogger("gateway.redis")

_meter = metrics.get_meter("gateway")
_LATENCY_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1]
_publish_duration = _meter.create_histogram(
    "gateway.backplane.publish.duration", unit="s", description="Time to publish a message to Redis.",
    explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS)
_lag = _meter.create_histogram(
    "gateway.backplane.lag", unit="s", explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
    description="Time from publishing a send to its coming back from Redis to this process, before delivery.")
_IN_FLIGHT = 1000
"""At most this many own sends wait for their return to measure the lag (Redis may lose them when it is down)."""
RECOVERY_TIMEOUT = 10.0
"""Seconds one ``on_recovered`` callback may take before it is given up (the listener waits for it)."""


@dataclass(frozen=True, slots=True)
class Outage:
    """What an ``on_recovered`` callback is told: ``began`` is the last moment (wall-clock ms) this process
    knew it was subscribed; ``groups`` maps each hub's name to its groups with connections here."""

    began: float
    groups: Mapping[str, frozenset[str]]


Recovery = Callable[[Outage], Awaitable[Sequence[Send]]]
"""An ``on_recovered`` callback: the sends this process missed during the outage, in the order to deliver."""


@dataclass(slots=True)
class _Claim:
    hub: str
    connection_id: str
    result: asyncio.Future[ConnectionState | None]
    buffering: bool = False
    ops: list[Send | GroupChange] = field(default_factory=list)


def _token_key(prefix: str, hub: str, token: str) -> str:
    return f"{prefix}:tok:{hub}:{hashlib.sha256(token.encode()).hexdigest()}"


class RedisBackplane:
    """Routes sends, group changes, handovers and forwarded requests through Redis."""

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "gw", node: str | None = None,
        handover_timeout: float = 2.0, token_ttl: int = 24 * 3600, reconnect_pause: float = 1.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.node = node or secrets.token_hex(6)
        self.handover_timeout = handover_timeout
        self.token_ttl = token_ttl
        self.reconnect_pause = reconnect_pause
        # A blocking pool: a burst (thousands of connections closing at once) waits for a connection
        # instead of failing with "Too many connections" and dropping the heartbeat with it.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5, max_connections=32, timeout=10,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._forgotten: list[str] = []
        self._forgetting: asyncio.Task[None] | None = None
        self._hubs: dict[str, LocalNode] = {}
        self._claims: dict[str, _Claim] = {}
        self._replies: dict[str, asyncio.Future[Reply]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight: dict[str, float] = {}  # own sends on their way through Redis, when they left
        self._recoveries: list[Recovery] = []
        self._good = 0.0  # wall-clock ms of the last beat while subscribed
        self._lost: float | None = None  # when the outage not yet recovered from began
        self.healthy = False

    # --- lifecycle ---------------------------------------------------------------------------

    def on_recovered(self, callback: Recovery) -> None:
        """Call ``callback`` each time the subscription is back after an outage (see the module's docstring)."""
        self._recoveries.append(callback)

    def register(self, hub: str, local: LocalDelivery) -> None:
        if not isinstance(local, LocalNode):
            raise TypeError("the Redis backplane needs a LocalNode (a Gateway)")
        self._hubs[hub] = local

    @property
    def _all(self) -> str:
        return f"{self.prefix}:all"

    def _node_channel(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    async def start(self) -> None:
        """Subscribe (once); returns when subscribed or after one failed try."""
        if self._listener is None or self._listener.done():
            self._ready = asyncio.Event()
            self._listener = asyncio.ensure_future(self._listen())
        assert self._ready is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 3)

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):  # gone: no process counts on this one any more
            await self._redis.delete(f"{self.prefix}:serving:{self.node}", f"{self.prefix}:alive:{self.node}")
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        for task in list(self._tasks):
            task.cancel()
        if self._forgetting is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._forgetting, 5)
        await self._redis.aclose()

    def clients(self, hub: str) -> HubClients:
        """``clients`` for ``hub`` from a process that serves no connection (a job worker)."""

        async def publish(target: Target, record: Broadcast) -> None:
            await self.publish(hub, target, record)

        return HubClients(publish)

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._all, self._node_channel(self.node))
                await self._beat()
                if not self.healthy:
                    log.info("backplane node %s: subscribed to redis", self.node)
                self.healthy = True
                assert self._ready is not None
                self._ready.set()
                await self._recover()
                heartbeat = asyncio.get_running_loop().time()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    now = asyncio.get_running_loop().time()
                    if now - heartbeat >= 3:
                        heartbeat = now
                        await self._beat()
                    if message is not None and message["type"] == "message":
                        await self._received(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # redis-py may turn a cancel into its own error
                    raise asyncio.CancelledError from exc
                self._unsubscribed(exc)
                await asyncio.sleep(self.reconnect_pause)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _unsubscribed(self, exc: Exception) -> None:
        if self.healthy:
            log.warning("backplane node %s: redis unavailable (%s); local delivery only", self.node, exc)
        if self._lost is None and self._good:
            self._lost = self._good
        self.healthy = False
        self._in_flight.clear()
        assert self._ready is not None
        self._ready.set()

    async def _recover(self) -> None:
        """After an outage, deliver here what each ``on_recovered`` callback says was missed, before anything else."""
        if self._lost is None:
            return
        outage = Outage(self._lost, {hub: local.groups() for hub, local in self._hubs.items()})
        for callback in self._recoveries:
            try:
                sends = await asyncio.wait_for(callback(outage), RECOVERY_TIMEOUT)
            except TimeoutError:
                log.warning("backplane node %s: a recovery callback took over %g s", self.node, RECOVERY_TIMEOUT)
                continue
            except (RedisError, OSError):
                raise  # Redis went again: the next subscription tries anew, from the same outage
            except Exception:
                log.exception("backplane node %s: a recovery callback failed", self.node)
                continue
            for send in sends:
                self._apply(send)
            log.info("backplane node %s: %d missed sends delivered after the outage", self.node, len(sends))
        self._lost = None

    async def _beat(self) -> None:
        """Renew this node's liveness, and (if it serves hubs, unlike a job worker's) its serving marker."""
        await self._redis.set(f"{self.prefix}:alive:{self.node}", "1", ex=10)
        if self._hubs:
            await self._redis.set(f"{self.prefix}:serving:{self.node}", "1", ex=10)
        self._good = time.time() * 1000

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, channel: str, message: Message) -> None:
        data = encode(message)
        started = time.perf_counter()
        if isinstance(message, Send) and len(self._in_flight) < _IN_FLIGHT:
            self._in_flight[data] = started
        await self._redis.publish(channel, data)
        _publish_duration.record(time.perf_counter() - started)

    # --- sends and groups --------------------------------------------------------------------

    async def publish(self, hub: str, target: Target, record: Broadcast) -> None:
        if self._listener is None:  # a worker process that never called start()
            await self.start()
        message = Send(hub, target, Broadcast.of(record.records()))  # every protocol's record, encoded here once
        if self.healthy:
            try:
                await self._publish(self._all, message)
                return
            except (RedisError, OSError) as exc:
                log.warning("backplane: publish failed (%s); delivering locally only", exc)
        local = self._hubs.get(hub)
        if local is not None:
            local.deliver(target, record)

    async def group_add(self, hub: str, connection_id: str, group: str) -> None:
        await self._group(GroupChange(hub, connection_id, group, add=True))

    async def group_remove(self, hub: str, connection_id: str, group: str) -> None:
        await self._group(GroupChange(hub, connection_id, group, add=False))

    async def _group(self, change: GroupChange) -> None:
        local = self._hubs.get(change.hub)
        if local is not None:
            apply = local.group_add if change.add else local.group_remove
            if apply(change.connection_id, change.group) or not self.healthy:
                return
        await self._publish(self._all, change)

    # --- the token directory -----------------------------------------------------------------

    async def announce(self, hub: str, token: str, connection_id: str) -> None:
        """Record that this process holds the connection of ``token``."""
        with contextlib.suppress(RedisError, OSError):
            value = json.dumps({"node": self.node, "id": connection_id})
            await self._redis.set(_token_key(self.prefix, hub, token), value, ex=self.token_ttl)

    async def forget(self, hub: str, token: str) -> None:
        """Drop a closed connection's directory entry; entries are deleted in batches, in the background."""
        self._forgotten.append(_token_key(self.prefix, hub, token))
        if self._forgetting is None or self._forgetting.done():
            self._forgetting = asyncio.ensure_future(self._forget_batches())

    async def _forget_batches(self) -> None:
        while self._forgotten:
            batch, self._forgotten = self._forgotten[:500], self._forgotten[500:]
            try:
                await self._redis.delete(*batch)
            except (RedisError, OSError) as exc:  # they expire on their own (token_ttl)
                log.warning("backplane: could not delete %d directory entries (%s)", len(batch), exc)

    async def _locate(self, hub: str, token: str) -> tuple[str, str] | None:
        if not self.healthy:
            return None
        try:
            raw = await self._redis.get(_token_key(self.prefix, hub, token))
            if raw is None:
                return None
            entry = json.loads(raw)
            node, connection_id = str(entry["node"]), str(entry["id"])
            if node != self.node and not await self._redis.exists(f"{self.prefix}:alive:{node}"):
                log.info("connection %s: its process %s is gone", connection_id, node)
                await self._redis.delete(_token_key(self.prefix, hub, token))
                return None
        except (RedisError, OSError, ValueError, KeyError):
            return None
        return node, connection_id

    # --- handover ----------------------------------------------------------------------------

    async def claim(self, hub: str, token: str) -> bool:
        """Move the connection of ``token`` here, if another process holds it; True once it is here."""
        located = await self._locate(hub, token)
        if located is None or located[0] == self.node:
            return False
        node, connection_id = located
        corr = secrets.token_hex(8)
        claim = _Claim(hub, connection_id, asyncio.get_running_loop().create_future())
        self._claims[corr] = claim
        try:
            await self._publish(self._all, Handover(hub, connection_id, node, self.node, corr))
            state = await asyncio.wait_for(claim.result, self.handover_timeout)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("connection %s: handover from %s failed (%r)", connection_id, node, exc)
            return False
        finally:
            self._claims.pop(corr, None)
        if state is None:
            return False
        self._hubs[hub].adopt_connection(state, claim.ops)  # with the buffered ops, before any await
        await self.announce(hub, token, connection_id)
        log.info("connection %s: moved here from %s", connection_id, node)
        return True

    async def peers(self) -> int:
        """The other processes serving hubs whose heartbeat is fresh (each renews ``{prefix}:serving:{node}``
        every 3 s, and deletes it when it closes)."""
        if not self.healthy:
            return 0
        try:
            keys = [key async for key in self._redis.scan_iter(match=f"{self.prefix}:serving:*", count=1000)]
        except (RedisError, OSError):
            return 0
        return sum(1 for key in keys if key != f"{self.prefix}:serving:{self.node}")

    # --- forwarded requests ------------------------------------------------------------------

    async def held_elsewhere(self, hub: str, token: str) -> bool:
        """Whether the directory names another live process as the holder of ``token``'s connection."""
        located = await self._locate(hub, token)
        return located is not None and located[0] != self.node

    async def forward(self, hub: str, token: str, op: ForwardOp, body: str = "") -> tuple[int, str | None] | None:
        """Have the process holding ``token``'s connection handle a POST or DELETE; None if none does."""
        for _ in range(3):
            located = await self._locate(hub, token)
            if located is None or located[0] == self.node:
                return None
            node, connection_id = located
            corr = secrets.token_hex(8)
            future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
            self._replies[corr] = future
            try:
                await self._publish(self._node_channel(node), Forward(hub, connection_id, op, body, self.node, corr))
                reply = await asyncio.wait_for(future, 5.0)
            except (TimeoutError, RedisError, OSError):
                return 503, "the process holding this connection did not answer"
            finally:
                self._replies.pop(corr, None)
            if reply.status != 410:  # 410: it moved meanwhile; look it up again
                return reply.status, reply.error
        return 503, "the connection keeps moving"

    async def _answer(self, message: Forward) -> None:
        local = self._hubs.get(message.hub)
        status, error = (410, None) if local is None else await local.forwarded(
            message.connection_id, message.op, message.body)
        with contextlib.suppress(RedisError, OSError):
            await self._publish(self._node_channel(message.from_node), Reply(message.corr, status, error))

    # --- the one place messages come in ------------------------------------------------------

    async def _received(self, data: str) -> None:
        if self._in_flight:
            started = self._in_flight.pop(data, None)
            if started is not None:
                _lag.record(time.perf_counter() - started)
        try:
            message = decode(data)
        except ValueError as exc:
            log.warning("backplane node %s: dropped a message: %s", self.node, exc)
            return
        await self._handle(message)

    async def _handle(self, message: Message) -> None:
        if isinstance(message, Send | GroupChange):
            self._apply(message)
        elif isinstance(message, Handover):
            await self._handover(message)
        elif isinstance(message, HandoverState):
            claim = self._claims.get(message.corr)
            if claim is not None and not claim.result.done():
                claim.result.set_result(message.state)
        elif isinstance(message, Forward):
            self._spawn(self._answer(message))
        else:
            future = self._replies.get(message.corr)
            if future is not None and not future.done():
                future.set_result(message)

    def _apply(self, message: Send | GroupChange) -> None:
        local = self._hubs.get(message.hub)
        if local is None:
            return
        for claim in self._claims.values():
            if claim.buffering and claim.hub == message.hub:
                claim.ops.append(message)
        if isinstance(message, Send):
            local.deliver(message.target, message.record, coalesce=True)
        elif message.add:
            local.group_add(message.connection_id, message.group)
        else:
            local.group_remove(message.connection_id, message.group)

    async def _handover(self, message: Handover) -> None:
        if message.to_node == self.node:
            claim = self._claims.get(message.corr)
            if claim is not None:
                claim.buffering = True
        if message.from_node == self.node:
            local = self._hubs.get(message.hub)
            state = local.export_connection(message.connection_id) if local is not None else None
            with contextlib.suppress(RedisError, OSError):
                await self._publish(self._node_channel(message.to_node), HandoverState(message.corr, state))


__all__ = ["LocalNode", "Outage", "Recovery", "RedisBackplane"]
