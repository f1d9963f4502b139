"""The server's parts wired as Gateway wires them, without an ASGI app: for tests of one module."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gateway.backplane import InProcessBackplane, Target
from gateway.protocol import Limits, Received
from gateway.protocol.broadcast import Broadcast
from gateway.protocol.hubjson import RS, encode, encode_handshake_request
from gateway.protocol.messages import Invocation
from gateway.server.connection import ServerConnection
from gateway.server.deadlines import Deadlines
from gateway.server.handler import Handler
from gateway.server.lifecycle import Lifecycle
from gateway.server.limits import PendingLimiter
from gateway.server.lookup import Closed
from gateway.server.node import Node
from gateway.server.registry import Registry


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """A Handler that records what it is told."""

    messages: list[tuple[str, Received]] = field(default_factory=list)
    ends: list[tuple[str, str | None]] = field(default_factory=list)

    async def received(self, conn: ServerConnection, received: Received) -> None:
        self.messages.append((conn.id, received))

    async def closed(self, conn: ServerConnection, error: str | None) -> None:
        self.ends.append((conn.id, error))

    def moved(self, conn: ServerConnection) -> None:
        self.ends.append((conn.id, "moved"))


@dataclass
class Parts:
    registry: Registry
    backplane: InProcessBackplane
    lifecycle: Lifecycle
    closed: Closed
    node: Node
    clock: Clock
    deadlines: Deadlines

    async def publish(self, target: Target, record: Broadcast) -> None:
        await self.backplane.publish("hub", target, record)


def parts(handler: Handler, limits: Limits | None = None) -> Parts:
    registry, backplane, closed, clock = Registry(), InProcessBackplane(), Closed(5.0), Clock()
    deadlines = Deadlines(clock)
    lifecycle = Lifecycle("hub", registry, backplane, handler, closed, limits=limits or Limits(), clock=clock,
                          deadlines=deadlines, pending=PendingLimiter())
    node = Node(registry, lifecycle, partial(backplane.publish, "hub"))
    backplane.register("hub", node)
    return Parts(registry, backplane, lifecycle, closed, node, clock, deadlines)


async def handshaken(p: Parts, user: str | None = None, stateful: bool = False) -> ServerConnection:
    conn = p.lifecycle.create(stateful, user)
    await conn.receive(encode_handshake_request())
    conn.core.take(p.clock())  # the handshake response
    return conn


def invoke(target: str, *arguments: Any, invocation_id: str | None = "1") -> str:
    return encode(Invocation(target, list(arguments), invocation_id))


def records(conn: ServerConnection, now: float = 0.0) -> list[dict[str, Any]]:
    """Every record the connection has queued (taken, so a second call sees only new ones)."""
    return [json.loads(r) for r in conn.core.take(now).split(RS) if r]
