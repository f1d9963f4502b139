"""The server side of one logical connection, without I/O.

Theory of operation
-------------------
A connection is created by negotiate and lives until it is closed. Streams (a WebSocket, an SSE
response, a ForeverFrame page, one long poll) attach to it and detach from it; between streams it
is DETACHED and waits, at most the disconnect timeout, for the next one. The first record the
client sends is the handshake; after it the connection is CONNECTED while a stream is attached.

    NEGOTIATED --attach--> CONNECTING --handshake--> CONNECTED
    NEGOTIATED --handshake--> DETACHED --attach--> CONNECTED --detach--> DETACHED
    any state --close--> CLOSED

Outgoing records wait in a queue until a stream takes them. Under stateful reconnect every
trackable record gets the next sequence id from the ``Ledger`` (shared with the client's session)
and, once taken, stays there until the client acks it; a resume puts a Sequence record and every
unacked record back at the head of the queue. Incoming trackable messages are counted the same way,
so duplicates after a resume are dropped.

Time is an argument: ``tick(now)`` returns what is due (a keep-alive ping, or a reason to close), and
``next_due(now)`` says when ``tick`` next has something to do, so the I/O layer wakes exactly then.

The handshake (JSON text ended by 0x1E, whatever the protocol) picks the hub protocol by name from
``PROTOCOLS``. Until then input is read as bytes; what follows the handshake goes to the protocol's record
reader: text for JSON, bytes for MessagePack. The outbox holds records of that protocol (``str`` or
``bytes``), and ``take`` joins them into one payload of the same type; Ping, Ack, Sequence and Close are
encoded with it too. A record pushed before the handshake is JSON (the default); a handshake that picks
another protocol re-encodes what waits.

Counters (records and bytes each way, framing excluded) are plain int adds, for the public view.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn

from . import hubjson
from .errors import OutboxOverflow, ProtocolError, StateError
from .hubprotocols import JSON, PROTOCOLS, HubProtocol, RecordReader, split_handshake
from .ledger import Ledger
from .messages import Ack, Close, HubMessage, Ping, Sequence, UnknownMessage, is_trackable


class State(Enum):
    NEGOTIATED = "negotiated"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DETACHED = "detached"
    CLOSED = "closed"


class Event(Enum):
    ATTACH = "attach"
    DETACH = "detach"
    HANDSHAKE = "handshake"
    CLOSE = "close"


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.NEGOTIATED, Event.ATTACH): State.CONNECTING,
    (State.NEGOTIATED, Event.HANDSHAKE): State.DETACHED,
    (State.CONNECTING, Event.HANDSHAKE): State.CONNECTED,
    (State.CONNECTING, Event.DETACH): State.NEGOTIATED,
    (State.CONNECTED, Event.DETACH): State.DETACHED,
    (State.DETACHED, Event.ATTACH): State.CONNECTED,
    (State.NEGOTIATED, Event.CLOSE): State.CLOSED,
    (State.CONNECTING, Event.CLOSE): State.CLOSED,
    (State.CONNECTED, Event.CLOSE): State.CLOSED,
    (State.DETACHED, Event.CLOSE): State.CLOSED,
    (State.CLOSED, Event.CLOSE): State.CLOSED,
}

SUPPORTED_VERSIONS = (0, 1, 2)
"""Hub protocol versions (JSON and MessagePack alike): any up to ours, as ASP.NET Core accepts (some third-party
clients send 0); 2 is what clients ask for with stateful reconnect (Ack and Sequence)."""

ATTACHED = frozenset({State.CONNECTING, State.CONNECTED})
HANDSHAKEN = frozenset({State.CONNECTED, State.DETACHED})


CLIENT_SERVER_TIMEOUT = 30.0
"""The clients' server timeout: with nothing received for this long, a client takes its stream as dead (the JS
client's ``serverTimeout``, the Python client's ``server_timeout``, the official client's 30 s)."""
RESUME_TIME = 10.0
"""What a resume may take once the client noticed a drop: two attempts at the clients' 5 s start timeout."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits and timeouts, in bytes and seconds.

    The lifetimes must agree with the clients' (``lifetime_problems`` checks them). A stream can end in a way
    only the server sees: a proxy cuts an idle response and the page's EventSource or iframe fires nothing. The
    client finds out at the latest after its server timeout of silence, then resumes. So the invariant is::

        disconnect_timeout >= CLIENT_SERVER_TIMEOUT + RESUME_TIME

    or a client comes back to a connection already forgotten, with its groups and every message sent meanwhile
    lost. And ``keepalive_interval`` stays under the clients' server timeout and under 60 s (proxy idle timeouts).
    """

    max_message_size: int = 32 * 1024
    max_buffer: int = 1024 * 1024
    max_frame_size: int = 1024 * 1024
    """A WebSocket message (all its frames) over this closes the connection with 1009; ``max_body`` is its POST twin."""
    max_batch: int = 256
    """Records parsed and dispatched in one go; a message holding more is handled in batches, yielding between them."""
    keepalive_interval: float = 15.0
    client_timeout: float = 30.0
    handshake_timeout: float = 15.0
    disconnect_timeout: float = 45.0
    """How long a detached connection waits for its client to resume (see the invariant above)."""
    send_timeout: float = 30.0
    """A write to the client blocked this long closes the connection as a slow consumer."""

    def lifetime_problems(
        self, server_timeout: float = CLIENT_SERVER_TIMEOUT, resume_time: float = RESUME_TIME,
    ) -> list[str]:
        """The lifetime invariants these limits break for clients with ``server_timeout`` (none for the defaults)."""
        problems = []
        if self.disconnect_timeout < server_timeout + resume_time:
            problems.append(
                f"disconnect_timeout {self.disconnect_timeout:g} s is shorter than the clients' server timeout "
                f"{server_timeout:g} s plus a resume's {resume_time:g} s: a client that notices a cut "
                "late finds its connection gone"
            )
        if not self.keepalive_interval < min(server_timeout, 60.0):
            problems.append(
                f"keepalive_interval {self.keepalive_interval:g} s must be under the clients' server timeout "
                f"{server_timeout:g} s and under 60 s"
            )
        return problems


@dataclass(frozen=True, slots=True)
class Received:
    """What ``receive`` made of a batch of records.

    ``more``: complete records are still waiting; ``receive("", now)`` returns the next batch.
    ``unknown``: the type of the first message of an unknown type this connection received (set once).
    """

    messages: list[HubMessage]
    handshake: bool = False
    more: bool = False
    unknown: int | None = None


class Connection:
    """One connection's state machine, outbox, acks, replay and deadlines."""

    __slots__ = (
        "state", "stateful", "limits", "protocol", "binary_ok", "_queue", "_queued_bytes", "_ledger", "_reader",
        "_generation", "_pings", "_created", "_last_sent", "_last_received", "_detached_at", "close_reason", "ignored",
        "messages_in", "messages_out", "bytes_in", "bytes_out", "replayed", "greeted",
    )

    def __init__(self, now: float, *, stateful: bool = False, limits: Limits | None = None) -> None:
        self.state = State.NEGOTIATED
        self.stateful = stateful
        self.limits = limits or Limits()
        self.protocol: HubProtocol[Any] = JSON
        """The hub protocol the handshake picked (JSON until then)."""
        self.binary_ok = True
        """Whether the latest stream can carry a Binary protocol (SSE and ForeverFrame carry Text only)."""
        self._queue: list[tuple[int, Any]] = []  # lists: 56 bytes empty, where a deque is 600+
        self._queued_bytes = 0
        self._ledger = Ledger()
        self._reader: RecordReader[Any] | bytes = b""  # before the handshake: the bytes of a partial handshake
        self._generation = 0
        self._pings = False
        self._created = self._last_sent = self._last_received = self._detached_at = now
        self.close_reason: str | None = None
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.ignored = 0
        """Messages of an unknown type received and ignored."""
        self.replayed = 0
        self.greeted = False
        """The handshake completed (it stays True once the connection closes)."""
        """Messages queued again by resumes (the Sequence records not counted)."""

    @property
    def created(self) -> float:
        """When the connection was negotiated (or restored here)."""
        return self._created

    # --- state machine ----------------------------------------------------------------------

    def _fire(self, event: Event) -> None:
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            raise StateError(f"can't handle event {event.value} in state {self.state.value}")
        self.state = target

    @property
    def handshaken(self) -> bool:
        return self.state in HANDSHAKEN

    @property
    def attached(self) -> bool:
        return self.state in ATTACHED

    def attach(self, now: float, *, pings: bool = True, resume: bool = False, binary: bool = True) -> int:
        """A stream takes over; returns its generation. The I/O layer checks for conflicts first.

        ``binary``: the stream can carry a Binary hub protocol; a handshake asking for one is refused if not.
        """
        if self.attached:
            self._fire(Event.DETACH)
        self._fire(Event.ATTACH)
        self._generation += 1
        self._pings = pings
        self.binary_ok = binary
        self._last_received = now
        if resume and self.stateful and self.handshaken and not self._greeting_pending():
            self._replay()
        return self._generation

    def _greeting_pending(self) -> bool:
        """The handshake response has not gone out yet: a stream now is the first, not a resume."""
        return bool(self._queue) and self._queue[0][1] == _greeting(self.protocol)

    def detach(self, generation: int, now: float) -> bool:
        """The stream of ``generation`` ended; False if a newer stream had already replaced it."""
        if generation != self._generation or not self.attached:
            return False
        self._fire(Event.DETACH)
        self._detached_at = now
        return True

    def cut(self, now: float) -> bool:
        """Drop the stream attached now, as a network failure would: its generation is over (its I/O ends with
        nothing more written) and the connection waits, detached, for its client to resume. False if none is."""
        if not self.attached:
            return False
        self._generation += 1
        return self.detach(self._generation, now)

    def close(self, reason: str | None = None, *, notify: bool = True, allow_reconnect: bool = False) -> None:
        """Close; with ``notify`` a Close record (carrying ``reason`` as its error) is queued first.

        ``allow_reconnect`` marks the record so that the client reconnects (elsewhere) instead of giving up.
        """
        if self.state is State.CLOSED:
            return
        if notify and self.handshaken:
            self._queue.append((0, self.protocol.encode(Close(reason, allow_reconnect))))
        self.close_reason = reason
        self._fire(Event.CLOSE)

    @property
    def generation(self) -> int:
        return self._generation

    # --- incoming ---------------------------------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> Received:
        """Feed client data (any split); returns the next hub messages to dispatch, in order.

        Text or bytes alike: text on a Binary protocol is its UTF-8 bytes, bytes on a Text protocol must be
        UTF-8. At most ``limits.max_batch`` records are handled per call; when ``more`` is set, the I/O
        layer lets other work run, then calls ``receive("", now)`` for the next batch.
        """
        if self.state is State.CLOSED:
            raise ProtocolError("the connection is closed", status=404)
        self._last_received = now
        reader = self._reader
        if isinstance(reader, bytes):
            return self._receive_handshake(reader, data)
        if self.protocol is JSON:
            if (data == hubjson.PING or data == _PING) and not reader.pending and not reader.backlog:  # a lone ping
                self.messages_in += 1
                self.bytes_in += len(hubjson.PING)
                return Received([])
            if not isinstance(data, str):
                data = _decode(data)
            self.bytes_in += _utf8_len(data)
        else:
            if isinstance(data, str):
                data = data.encode()
            self.bytes_in += len(data)
        return self._parse(reader, reader.feed(data, self.limits.max_batch), False)

    def _receive_handshake(self, buffered: bytes, data: str | bytes) -> Received:
        """Input before the handshake: bytes until its 0x1E; what follows goes to the chosen protocol."""
        chunk = data.encode() if isinstance(data, str) else data
        self.bytes_in += len(chunk)
        buffered += chunk
        split = split_handshake(buffered, self.limits.max_message_size)
        if split is None:
            self._reader = buffered
            return Received([])
        text, rest = split
        self.messages_in += 1
        self._handshake(text)
        reader = self.protocol.reader(self.limits.max_message_size)
        self._reader = reader
        if not rest:
            return Received([], True)
        limit = max(1, self.limits.max_batch - 1)  # the handshake counts in its batch
        return self._parse(reader, reader.feed(_decode(rest) if self.protocol is JSON else rest, limit), True)

    def _parse(self, reader: RecordReader[Any], records: list[Any], handshake: bool) -> Received:
        self.messages_in += len(records)
        unknown: int | None = None
        messages: list[HubMessage] = []
        parse = hubjson.parse_message if self.protocol is JSON else self.protocol.parse
        for record in records:
            message = parse(record)
            if isinstance(message, UnknownMessage):  # ignored: a newer client may send types we do not know
                if not self.ignored:
                    unknown = message.type
                self.ignored += 1
            elif self._accept(message):
                messages.append(message)
        return Received(messages, handshake, reader.backlog, unknown)

    def _handshake(self, record: str) -> None:
        try:
            request = hubjson.parse_handshake_request(record)
        except ProtocolError as exc:
            self._refuse(f"malformed handshake: {exc.message}")
        protocol = PROTOCOLS.get(request.protocol)
        if protocol is None or request.version not in SUPPORTED_VERSIONS:
            self._refuse(f"Requested protocol '{request.protocol}' version {request.version} is not available.")
        if protocol.transfer_format == "Binary" and not self.binary_ok:
            self._refuse(f"Requested protocol '{protocol.name}' needs the Binary transfer format, which this "
                         "transport cannot carry (it carries Text only): use WebSockets or LongPolling.")
        if protocol is not JSON:
            self._queue = [(seq, protocol.encode(hubjson.parse_message(r[:-1]))) for seq, r in self._queue]
            self._queued_bytes = sum(len(r) for _, r in self._queue)
            self._ledger.encode = protocol.encode
        self.protocol = protocol
        self._queue.insert(0, (0, _greeting(protocol)))
        self._fire(Event.HANDSHAKE)
        self.greeted = True

    def _refuse(self, error: str) -> NoReturn:
        """Answer the handshake with ``error`` (JSON text, whatever was asked for) and raise it."""
        self._queue.append((0, hubjson.encode_handshake_response(error)))
        raise ProtocolError(error) from None

    def _accept(self, message: HubMessage) -> bool:
        if not self.stateful:
            return not isinstance(message, Ack | Sequence)
        return self._ledger.accept(message)

    @property
    def _unacked_bytes(self) -> int:
        """Bytes of the records taken and not yet acknowledged."""
        return self._ledger.unacked_bytes

    @property
    def buffered(self) -> int:
        """Bytes queued for the client or sent and not yet acknowledged (what ``max_buffer`` bounds)."""
        return self._queued_bytes + self._ledger.unacked_bytes

    # --- outgoing ---------------------------------------------------------------------------

    def push(self, record: str | bytes, *, trackable: bool = True) -> None:
        """Queue one record encoded with ``protocol`` (framing included) for the client."""
        if self.state is State.CLOSED:
            return
        seq = self._ledger.number() if trackable and self.stateful else 0
        self._queue.append((seq, record))
        self._queued_bytes += len(record)
        buffered = self._queued_bytes + self._ledger.unacked_bytes
        if buffered > self.limits.max_buffer:
            raise OutboxOverflow(
                f"{buffered} bytes unsent or unacknowledged "
                f"exceed the limit of {self.limits.max_buffer}"
            )

    def push_message(self, message: HubMessage) -> None:
        self.push(self.protocol.encode(message), trackable=is_trackable(message))

    @property
    def has_output(self) -> bool:
        return bool(self._queue) or self._ledger.ack_due

    def take(self, now: float) -> Any:
        """Everything queued as one payload (``str`` or ``bytes``, as the protocol's records), marking trackable
        records as awaiting their ack; "" when there is nothing."""
        ledger = self._ledger
        queue = self._queue
        if len(queue) == 1 and not ledger.ack_due:  # the common case of a push: one record, no ack
            seq, record = queue[0]
            self._queue = []
            if seq:
                ledger.sent(seq, record)
            self._queued_bytes = 0
            self._last_sent = now
            self.messages_out += 1
            self.bytes_out += len(record) if record.__class__ is bytes or record.isascii() else _utf8_len(record)
            return record
        ack = ledger.take_ack()
        parts: list[Any] = [ack] if ack else []
        if queue:
            self._queue = []
            for seq, record in queue:
                parts.append(record)
                if seq:
                    ledger.sent(seq, record)
            if ack and parts[1] == _greeting(self.protocol):
                parts[0], parts[1] = parts[1], ack  # the handshake response comes first, always
        self._queued_bytes = 0
        if not parts:
            return ""
        self._last_sent = now
        self.messages_out += len(parts)
        if isinstance(parts[0], str):
            text = "".join(parts)
            self.bytes_out += _utf8_len(text)
            return text
        data = b"".join(parts)
        self.bytes_out += len(data)
        return data

    def _replay(self) -> None:
        first_queued = next((seq for seq, _ in self._queue if seq), 0)
        head = self._ledger.rewind(first_queued)
        self._queued_bytes += sum(len(r) for _, r in head[1:])
        self._queue[:0] = head
        self.replayed += len(head) - 1

    # --- moving between processes -------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything another process needs to carry on with this connection, as JSON-able data.

        A stream attached here is not carried: the restored connection starts detached.
        """
        state = {State.CONNECTING: State.NEGOTIATED, State.CONNECTED: State.DETACHED}.get(self.state, self.state)
        ledger = self._ledger
        reader = self._reader
        binary = self.protocol is not JSON
        return {
            "state": state.value, "stateful": self.stateful, "protocol": self.protocol.name,
            "queue": _dump(self._queue, binary), "unacked": _dump(ledger.unacked, binary),
            "next_out": ledger.next_out, "in_next": ledger.in_next, "in_last": ledger.in_last,
            "ack_due": ledger.ack_due, "generation": self._generation,
            "partial": reader.decode("utf-8", "surrogateescape") if isinstance(reader, bytes)
            else _dump([(0, reader.buffered)], binary)[0][1],
        }

    @classmethod
    def restore(cls, data: dict[str, Any], now: float, limits: Limits | None = None) -> Connection:
        """The connection a ``snapshot`` describes; its deadlines start again from ``now``."""
        conn = cls(now, stateful=bool(data["stateful"]), limits=limits)
        conn.state = State(data["state"])
        conn.greeted = conn.state in HANDSHAKEN
        protocol = conn.protocol = PROTOCOLS[str(data.get("protocol", JSON.name))]
        binary = protocol is not JSON
        conn._queue = _load(data["queue"], binary)
        conn._queued_bytes = sum(len(r) for _, r in conn._queue)
        ledger = conn._ledger
        ledger.encode = protocol.encode
        for seq, record in _load(data["unacked"], binary):
            ledger.sent(seq, record)
        ledger.next_out, ledger.in_next = int(data["next_out"]), int(data["in_next"])
        ledger.in_last = int(data["in_last"])
        ledger.ack_due = bool(data["ack_due"])
        partial = str(data["partial"])
        if conn.handshaken:
            reader = conn._reader = protocol.reader(conn.limits.max_message_size)
            reader.feed(_load([(0, partial)], binary)[0][1])
        else:
            conn._reader = partial.encode("utf-8", "surrogateescape")
        conn._generation = int(data["generation"])
        return conn

    # --- time -------------------------------------------------------------------------------

    def tick(self, now: float) -> str | None:
        """Queue a keep-alive ping if one is due; return a reason to close, if any."""
        limits = self.limits
        state = self.state
        if state is State.CLOSED:
            return None
        # each deadline is computed as in ``next_due`` (start + interval, not now - start), so that the two
        # agree to the last bit of a float: a due time that ``tick`` did not act on would be woken again at once
        if state in (State.NEGOTIATED, State.CONNECTING) and now >= self._created + limits.handshake_timeout:
            return "handshake timeout"
        if not self.attached and now >= self._detached_at + limits.disconnect_timeout:
            return "disconnect timeout"
        if state is State.CONNECTED:
            if now >= self._last_received + limits.client_timeout:
                return "client timeout"
            if self._pings and not self._queue and now >= self._last_sent + limits.keepalive_interval:
                self._queue.append((0, hubjson.PING if self.protocol is JSON else self.protocol.encode(Ping())))
        return None

    def next_due(self, now: float) -> float | None:
        """The earliest time after ``tick(now)`` at which ``tick`` may have something to do; None once closed.

        Never later than the true time (activity only moves deadlines later; a state change may move them
        earlier, and the I/O layer asks again then), and later than ``now`` once ``tick(now)`` has run.
        """
        limits = self.limits
        state = self.state
        if state is State.CLOSED:
            return None
        if state is State.CONNECTED:
            due = self._last_received + limits.client_timeout
            if self._pings:
                # output already waiting will move the last send to its write, and the ping after it
                ping = self._last_sent if not self._queue else max(self._last_sent, now)
                due = min(due, ping + limits.keepalive_interval)
            return due
        due = self._created + limits.handshake_timeout if state is not State.DETACHED else float("inf")
        if not self.attached:
            due = min(due, self._detached_at + limits.disconnect_timeout)
        return due


_PING = hubjson.PING.encode()


def _greeting(protocol: HubProtocol[Any]) -> str | bytes:
    """The handshake's success response, in the payload type of ``protocol``'s records."""
    return hubjson.HANDSHAKE_OK if protocol.transfer_format == "Text" else hubjson.HANDSHAKE_OK.encode()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("the data is not valid UTF-8") from None


def _dump(records: list[tuple[int, Any]], binary: bool) -> list[tuple[int, str]]:
    """Records as JSON-able text: as they are for a Text protocol, in base64 for a Binary one."""
    if not binary:
        return list(records)
    return [(seq, base64.b64encode(record).decode("ascii")) for seq, record in records]


def _load(records: list[Any], binary: bool) -> list[tuple[int, Any]]:
    if not binary:
        return [(int(seq), str(record)) for seq, record in records]
    return [(int(seq), base64.b64decode(record)) for seq, record in records]


def _utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8; O(1) for ASCII, which JSON records nearly always are."""
    return len(text) if text.isascii() else len(text.encode())


__all__ = [
    "CLIENT_SERVER_TIMEOUT", "RESUME_TIME", "Connection", "Event", "Limits", "Ping", "Received", "State", "TRANSITIONS",
]
