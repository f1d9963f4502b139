"""The client side of one logical connection, without I/O: the mirror of the server's ``Connection``.

Theory of operation
-------------------
A driver (``gateway.client``) negotiates and opens a transport, then asks the session for the
handshake request. The session counts the transport as started when the handshake response comes
back through it; text the driver reads goes in with ``receive``, records to write come out of
``invocation``, ``message``, ``ping``, ``tick`` and ``resumed``.

    DISCONNECTED --start--> CONNECTING --handshake--> CONNECTED --drop (stateful)--> RESUMING
    CONNECTING or CONNECTED --abandon--> DISCONNECTED   (the start timed out: the next transport is tried)
    RESUMING --resume--> CONNECTED              (a new stream: Sequence and the replay go first)
    any but CLOSED --close--> CLOSING; any --finish--> CLOSED

Under stateful reconnect a ``Ledger`` numbers the trackable messages both ways, as the server's
does. While RESUMING, trackable sends are only recorded: the replay carries them in order.
Time is an argument: ``tick(now)`` says what is due (a ping, an ack, or that the server is gone)
and ``deadline`` when to call it next.

The hub protocol is chosen at construction: JSON (records are ``str``) or MessagePack (``bytes``). The
handshake request is JSON text either way; on MessagePack the response comes as bytes, maybe with frames
behind it in the same transport message.
"""

from __future__ import annotations

import itertools
import math
from enum import Enum
from typing import Any, NamedTuple

from . import hubjson
from .errors import ProtocolError, StateError
from .hubprotocols import JSON, HubProtocol, RecordReader, split_handshake
from .ledger import Ledger
from .messages import Close, HandshakeResponse, HubMessage, Invocation, Ping, StreamInvocation, is_trackable

Payload = str | bytes
"""What the session reads and writes: text on JSON, bytes on MessagePack."""


class ClientState(Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RESUMING = "resuming"
    CLOSING = "closing"
    CLOSED = "closed"


class ClientEvent(Enum):
    START = "start"
    HANDSHAKE = "handshake"
    ABANDON = "abandon"
    DROP = "drop"
    RESUME = "resume"
    CLOSE = "close"
    FINISH = "finish"


_OPEN = (ClientState.DISCONNECTED, ClientState.CONNECTING, ClientState.CONNECTED, ClientState.RESUMING)
CLIENT_TRANSITIONS: dict[tuple[ClientState, ClientEvent], ClientState] = {
    (ClientState.DISCONNECTED, ClientEvent.START): ClientState.CONNECTING,
    (ClientState.CONNECTING, ClientEvent.HANDSHAKE): ClientState.CONNECTED,
    (ClientState.CONNECTING, ClientEvent.ABANDON): ClientState.DISCONNECTED,
    (ClientState.CONNECTED, ClientEvent.ABANDON): ClientState.DISCONNECTED,  # a start timeout just after the handshake
    (ClientState.CONNECTED, ClientEvent.DROP): ClientState.RESUMING,
    (ClientState.RESUMING, ClientEvent.RESUME): ClientState.CONNECTED,
    **{(state, ClientEvent.CLOSE): ClientState.CLOSING for state in _OPEN},
    **{(state, ClientEvent.FINISH): ClientState.CLOSED for state in (*_OPEN, ClientState.CLOSING)},
}

UNWRITABLE = frozenset({ClientState.DISCONNECTED, ClientState.CLOSING, ClientState.CLOSED})
_CONNECTING = ClientState.CONNECTING
PING_RECORD = hubjson.PING[:-1]


class Incoming(NamedTuple):
    """What ``receive`` made of a transport message: the messages to dispatch, and the handshake response."""

    messages: list[HubMessage]
    handshake: HandshakeResponse | None = None


class ClientSession:
    """One client connection's state machine, handshake, invocation ids, ledger and deadlines."""

    __slots__ = (
        "state", "keepalive_interval", "server_timeout", "ack_interval", "max_message_size", "ledger",
        "close_error", "pings", "protocol", "_reader", "_ids", "_last_sent", "_last_received", "_ack_at",
    )

    def __init__(
        self, *, keepalive_interval: float = 15.0, server_timeout: float = 30.0, ack_interval: float = 1.0,
        max_message_size: int = 1 << 20, protocol: HubProtocol[Any] = JSON,
    ) -> None:
        self.protocol = protocol
        self.state = ClientState.DISCONNECTED
        self.keepalive_interval = keepalive_interval
        self.server_timeout = server_timeout
        self.ack_interval = ack_interval
        self.max_message_size = max_message_size
        self.ledger: Ledger | None = None
        """Present when the server agreed to stateful reconnect."""
        self.close_error: str | None = None
        self.pings = 0
        """How many keep-alive pings the server sent."""
        self._reader: RecordReader[Any] = protocol.reader(max_message_size)
        self._ids = itertools.count(1)
        self._last_sent = self._last_received = 0.0
        self._ack_at = math.inf

    # --- state machine ----------------------------------------------------------------------

    def _fire(self, event: ClientEvent) -> None:
        target = CLIENT_TRANSITIONS.get((self.state, event))
        if target is None:
            raise StateError(f"can't handle event {event.value} in state {self.state.value}")
        self.state = target

    def start(self) -> None:
        """A start attempt begins (negotiate, then a transport)."""
        self._fire(ClientEvent.START)
        self._reader = self.protocol.reader(self.max_message_size)
        self.ledger = None

    def handshake(self, now: float, *, stateful: bool) -> str:
        """The transport is open: the handshake request to send; ``stateful`` as negotiated."""
        if self.state is not ClientState.CONNECTING:
            raise StateError(f"can't handshake in state {self.state.value}")
        self.ledger = Ledger(self.protocol.encode) if stateful else None
        self._last_sent = self._last_received = now
        return hubjson.encode_handshake_request(self.protocol.name)

    def abandon(self) -> None:
        """This start attempt failed; the session can start again on another transport."""
        self._fire(ClientEvent.ABANDON)

    def dropped(self) -> bool:
        """The stream ended without a Close. True: resume (stateful and connected); False: the connection is lost."""
        if self.state is ClientState.CONNECTED and self.ledger is not None:
            self._fire(ClientEvent.DROP)
            return True
        return False

    def resumed(self, now: float) -> Payload:
        """A new stream is open on the same connection: what to send first (Sequence, then the replay)."""
        ledger = self.ledger
        if ledger is None:
            raise StateError("stateful reconnect was not negotiated")
        self._fire(ClientEvent.RESUME)
        self._reader = self.protocol.reader(self.max_message_size)
        self._last_received = self._last_sent = now
        if ledger.in_last:
            ledger.ack_due = True
            self._ack_at = now + self.ack_interval
        replay = ledger.rewind()
        for seq, record in replay[1:]:
            ledger.sent(seq, record)
        return self._join([record for _, record in replay])

    def _join(self, records: list[Any]) -> Payload:
        return "".join(records) if self.protocol is JSON else b"".join(records)

    def close_record(self) -> Payload:
        """The Close message a client sends before it ends the connection."""
        return self.protocol.encode(Close())  # type: ignore[no-any-return]

    def close(self) -> None:
        """The application closes the connection."""
        if self.state not in (ClientState.CLOSING, ClientState.CLOSED):
            self._fire(ClientEvent.CLOSE)

    def finish(self, error: str | None) -> bool:
        """The connection is over (``error`` None for a normal close); False if it already was."""
        if self.state is ClientState.CLOSED:
            return False
        self._fire(ClientEvent.FINISH)
        self.close_error = error
        self._ack_at = math.inf
        return True

    # --- incoming ---------------------------------------------------------------------------

    def receive(self, data: Payload, now: float) -> Incoming:
        """Feed one transport message (whole records); returns what to dispatch, in order."""
        self._last_received = now
        if not data:
            return Incoming([])
        if self.protocol is not JSON:
            return self._receive_binary(data.encode() if isinstance(data, str) else data, now)
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        records = self._feed(data)
        handshake: HandshakeResponse | None = None
        messages: list[HubMessage] = []
        ledger = self.ledger
        for record in records:
            if self.state is _CONNECTING and handshake is None:
                handshake = self._handshake_response(record)
            elif record == PING_RECORD:
                self.pings += 1
            elif ledger is None:
                messages.append(hubjson.parse_message(record))
            else:
                self._accept(ledger, hubjson.parse_message(record), messages, now)
        return Incoming(messages, handshake)

    def _feed(self, data: Payload) -> list[Any]:
        reader = self._reader
        records = reader.feed(data)
        if reader.pending:
            self._reader = self.protocol.reader(self.max_message_size)
            raise ProtocolError("a transport message ended inside a record")
        return records

    def _receive_binary(self, data: bytes, now: float) -> Incoming:
        """A binary protocol's message: the handshake response (JSON text and 0x1E) first, then frames."""
        handshake: HandshakeResponse | None = None
        if self.state is _CONNECTING:
            split = split_handshake(data, self.max_message_size)
            if split is None:
                raise ProtocolError("a transport message ended inside the handshake response")
            text, data = split
            handshake = self._handshake_response(text)
        messages: list[HubMessage] = []
        ledger = self.ledger
        for record in self._feed(data) if data else ():
            message = self.protocol.parse(record)
            if isinstance(message, Ping):
                self.pings += 1
            elif ledger is None:
                messages.append(message)
            else:
                self._accept(ledger, message, messages, now)
        return Incoming(messages, handshake)

    def _handshake_response(self, record: str) -> HandshakeResponse:
        response = hubjson.parse_handshake_response(record)
        if response.error is None:
            self._fire(ClientEvent.HANDSHAKE)
        return response

    def _accept(self, ledger: Ledger, message: HubMessage, messages: list[HubMessage], now: float) -> None:
        if ledger.accept(message):
            if ledger.ack_due and self._ack_at == math.inf:
                self._ack_at = now + self.ack_interval
            messages.append(message)

    # --- outgoing ---------------------------------------------------------------------------

    def invocation(
        self, target: str, arguments: list[Any], now: float, stream_ids: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[str, Payload]:
        """An invocation that expects a completion: (its id, the record to write now, empty while resuming)."""
        invocation_id = self.new_id()
        message = Invocation(target, arguments, invocation_id, stream_ids, headers)
        return invocation_id, self._out(self.protocol.encode(message), now)

    def stream_invocation(
        self, target: str, arguments: list[Any], now: float, stream_ids: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[str, Payload]:
        """A StreamInvocation (a server stream): (its id, the record to write now, empty while resuming)."""
        invocation_id = self.new_id()
        message = StreamInvocation(target, arguments, invocation_id, stream_ids, headers)
        return invocation_id, self._out(self.protocol.encode(message), now)

    def message(
        self, target: str, arguments: list[Any], now: float, stream_ids: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Payload:
        """An invocation without a result: the record to write now (empty while resuming)."""
        return self._out(self.protocol.encode(Invocation(target, arguments, None, stream_ids, headers)), now)

    def send(self, message: HubMessage, now: float) -> Payload:
        """Any other message (a StreamItem, a Completion, a CancelInvocation): the record to write now."""
        return self._out(self.protocol.encode(message), now, trackable=is_trackable(message))

    def new_id(self) -> str:
        """A new id for an invocation or a client stream (one sequence for both, unique on the connection)."""
        return str(next(self._ids))

    def ping(self, now: float) -> Payload:
        """A keep-alive ping to write now (empty while resuming)."""
        return self._out(self.protocol.encode(Ping()), now, trackable=False)

    def raw(self, text: str, now: float) -> str:
        """Records the application writes as they are (malformed ones included): the text to write.

        Under stateful reconnect each well-formed trackable record in ``text`` is numbered, as the
        server will count it, so that the server's Ack of it names a message the ledger knows.
        """
        ledger = self.ledger
        if ledger is not None:
            for record in text.split(hubjson.RS)[:-1]:
                try:
                    message = hubjson.parse_message(record)
                except ProtocolError:
                    continue  # the server closes the connection for it: there is nothing to ack
                if is_trackable(message):
                    ledger.sent(ledger.number(), record + hubjson.RS)
        self._last_sent = now
        return text

    def _out(self, record: Payload, now: float, *, trackable: bool = True) -> Payload:
        if self.state in UNWRITABLE:
            raise ConnectionError(f"the connection is {self.state.value}")
        ledger = self.ledger
        if trackable and ledger is not None:
            ledger.sent(ledger.number(), record)
        if self.state is ClientState.RESUMING:
            return record[:0]  # a trackable record goes out with the replay; a ping is not needed
        self._last_sent = now
        return record

    # --- time -------------------------------------------------------------------------------

    def tick(self, now: float) -> tuple[Payload, str | None]:
        """What is due at ``now``: (records to write, empty for none; why the server counts as gone, or None)."""
        empty = self._join([])
        if self.state is not ClientState.CONNECTED:
            return empty, None
        if now - self._last_received >= self.server_timeout:
            self._last_received = now  # said once per timeout: the driver cuts the stream
            return empty, f"nothing from the server for {self.server_timeout} s"
        parts: list[Any] = []
        if now >= self._ack_at and self.ledger is not None:
            self._ack_at = math.inf
            parts.append(self.ledger.take_ack())
        if now - self._last_sent >= self.keepalive_interval:
            parts.append(hubjson.PING if self.protocol is JSON else self.protocol.encode(Ping()))
        text = self._join(parts)
        if text:
            self._last_sent = now
        return text, None

    def deadline(self) -> float:
        """When ``tick`` may next have something to do (infinity unless connected)."""
        if self.state is not ClientState.CONNECTED:
            return math.inf
        return min(
            self._last_received + self.server_timeout, self._last_sent + self.keepalive_interval, self._ack_at,
        )
