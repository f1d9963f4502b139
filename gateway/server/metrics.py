"""The gateway's metrics, through the OpenTelemetry metrics API, named after its SignalR conventions.

With no SDK configured the API hands out no-op instruments, so an unobserved gateway pays a few no-op calls per
connection (none per message). The per-message figures (messages and bytes each way) cost nothing on the hot path:
they are observable counters, read at collection time as the sum over live connections (whose ``Wire`` counts them
anyway, see ``server/wire.py``) plus what the closed ones had counted. The live connections come from the servers
that ``watch`` this module; it holds them weakly.

``signalr.server.active_connections`` and ``signalr.server.connection.duration`` follow the OpenTelemetry semantic
conventions for SignalR (attributes ``signalr.transport`` and ``signalr.connection.status``); the others are ours,
under ``gateway.``.
"""

from __future__ import annotations

import weakref
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from .connection import ServerConnection

TRANSPORT = "signalr.transport"
STATUS = "signalr.connection.status"
DIRECTION = "network.io.direction"
REASON = "gateway.reason"
FROM = "gateway.fallback.from"

meter = metrics.get_meter("gateway")


class Watched(Protocol):
    """What the metrics read from a server at collection time: its live connections."""

    def live(self) -> Iterable[ServerConnection]: ...


_watched: weakref.WeakSet[Watched] = weakref.WeakSet()
_seen: set[str] = set()  # the transports counted so far: each reports 0 once it has no connection left
_closed: Counter[tuple[str, str, str]] = Counter()  # (kind, transport, direction) of connections that closed


@dataclass(frozen=True, slots=True)
class Fallback:
    """A fallback the server saw: a connection that left ``tried`` for ``to`` (None: it never started)."""

    connection_id: str
    tried: str
    to: str | None
    reason: str


recent_fallbacks: deque[Fallback] = deque(maxlen=50)
"""The latest fallbacks and failed starts, newest last (the admin page lists them)."""


def watch(server: Watched) -> None:
    """Count ``server``'s live connections in the observable instruments (until it is garbage)."""
    _watched.add(server)


def _live() -> Iterator[ServerConnection]:
    for server in list(_watched):
        yield from server.live()


def _active(options: CallbackOptions) -> Iterable[Observation]:
    counts: Counter[str] = Counter(conn.transport for conn in _live() if conn.transport is not None)
    _seen.update(counts)
    return [Observation(counts[transport], {TRANSPORT: transport}) for transport in sorted(_seen)]


def _io(kind: str) -> Iterable[Observation]:
    totals = Counter({key: n for key, n in _closed.items() if key[0] == kind})
    for conn in _live():
        if conn.transport is not None:
            wire = conn.wire
            received, sent = (wire.messages_in, wire.messages_out) if kind == "m" else (wire.bytes_in, wire.bytes_out)
            totals[kind, conn.transport, "receive"] += received
            totals[kind, conn.transport, "transmit"] += sent
    return [Observation(n, {TRANSPORT: t, DIRECTION: d}) for (_, t, d), n in totals.items()]


meter.create_observable_up_down_counter(
    "signalr.server.active_connections", [_active], unit="{connection}",
    description="Connections open on the server now, by the transport of their latest stream.")
meter.create_observable_counter(
    "gateway.server.messages", [lambda options: _io("m")], unit="{message}",
    description="Hub messages that carry data (invocations, stream items, completions) received and sent.")
meter.create_observable_counter(
    "gateway.server.io", [lambda options: _io("b")], unit="By",
    description="Bytes received and sent on the wire (HTTP heads and framing included), by transport.")

duration = meter.create_histogram(
    "signalr.server.connection.duration", unit="s", description="How long connections lasted on the server.",
    explicit_bucket_boundaries_advisory=[0.01, 0.1, 1, 5, 15, 60, 300, 900, 3600, 14400])
negotiates = meter.create_counter(
    "gateway.server.negotiates", unit="{negotiate}", description="Connections negotiated.")
refused = meter.create_counter(
    "gateway.server.refused", unit="{request}", description="Requests refused, by reason.")
fallbacks = meter.create_counter(
    "gateway.server.fallbacks", unit="{fallback}",
    description="Streams that came on another transport than the connection's previous one (to: signalr.transport).")
failed_starts = meter.create_counter(
    "gateway.server.failed_starts", unit="{connection}",
    description="Connections that tried a transport and closed before their handshake, by transport and reason.")
resumes = meter.create_counter(
    "gateway.server.resumes", unit="{resume}", description="Streams that resumed a connection, by transport.")
replayed = meter.create_counter(
    "gateway.server.replayed_messages", unit="{message}", description="Messages sent again on a resume.")
slow_consumers = meter.create_counter(
    "gateway.server.slow_consumer_cuts", unit="{connection}",
    description="Connections closed because their client did not keep up.")
handovers = meter.create_counter(
    "gateway.server.handovers", unit="{connection}",
    description="Connections handed over to another process (direction transmit) or taken over (receive).")


def status(reason: str | None) -> str:
    """The ``signalr.connection.status`` of a close reason: the conventions' three values, then ours."""
    if reason is None or reason == "handed over":
        return "normal_closure"
    if reason == "server shutting down":
        return "app_shutdown"
    if "timeout" in reason or "timed out" in reason or "gone silent" in reason:
        return "timeout"
    if reason.startswith("slow consumer"):
        return "slow_consumer"
    return "error"


def closed(conn: ServerConnection, now: float) -> None:
    """Account for a connection that closed here."""
    core, transport = conn.core, conn.transport
    reason = core.close_reason
    if transport is None:
        return
    if not core.greeted:
        failed(conn.id, transport, reason or "abandoned")
        return
    retired(conn)
    result = status(reason)
    duration.record(now - core.created, {TRANSPORT: transport, STATUS: result})
    if result == "slow_consumer":
        slow_consumers.add(1, {TRANSPORT: transport})


def retired(conn: ServerConnection) -> None:
    """Keep the counts of a connection that left this process (closed, or handed over to another)."""
    wire, transport = conn.wire, conn.transport or ""
    for kind, received, sent in (("m", wire.messages_in, wire.messages_out), ("b", wire.bytes_in, wire.bytes_out)):
        _closed[kind, transport, "receive"] += received
        _closed[kind, transport, "transmit"] += sent


def failed(connection_id: str, transport: str, reason: str) -> None:
    """A connection that tried ``transport`` closed before its handshake."""
    failed_starts.add(1, {TRANSPORT: transport, REASON: reason})
    recent_fallbacks.append(Fallback(connection_id, transport, None, reason))


def moved(connection_id: str, tried: str, to: str, handshaken: bool) -> None:
    """A stream of ``to`` attached to a connection whose previous stream was ``tried``."""
    fallbacks.add(1, {FROM: tried, TRANSPORT: to})
    reason = "resumed on a later transport" if handshaken else "the start did not complete"
    recent_fallbacks.append(Fallback(connection_id, tried, to, reason))


def refuse(reason: str) -> None:
    """A request refused: ``origin``, ``auth``, ``malformed``, ``busy``, ``limits``, ``unknown_token``..."""
    refused.add(1, {REASON: reason})
