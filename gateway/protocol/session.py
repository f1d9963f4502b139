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
"""

from __future__ import annotations

import itertools
import math
from enum import Enum
from typing import Any, NamedTuple

from . import hubjson
from .errors import ProtocolError, StateError
from .ledger import Ledger
from .messages import HandshakeResponse, HubMessage, Invocation, StreamInvocation, is_trackable


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
        "close_error", "pings", "_reader", "_ids", "_last_sent", "_last_received", "_ack_at",
    )

    def __init__(
        self, *, keepalive_interval: float = 15.0, server_timeout: float = 30.0, ack_interval: float = 1.0,
        max_message_size: int = 1 << 20,
    ) -> None:
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
        self._reader = hubjson.RecordReader(max_message_size)
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
        self._reader = hubjson.RecordReader(self.max_message_size)
        self.ledger = None

    def handshake(self, now: float, *, stateful: bool) -> str:
        """The transport is open: the handshake request to send; ``stateful`` as negotiated."""
        if self.state is not ClientState.CONNECTING:
            raise StateError(f"can't handshake in state {self.state.value}")
        self.ledger = Ledger() if stateful else None
        self._last_sent = self._last_received = now
        return hubjson.encode_handshake_request()

    def abandon(self) -> None:
        """This start attempt failed; the session can start again on another transport."""
        self._fire(ClientEvent.ABANDON)

    def dropped(self) -> bool:
        """The stream ended without a Close. True: resume (stateful and connected); False: the connection is lost."""
        if self.state is ClientState.CONNECTED and self.ledger is not None:
            self._fire(ClientEvent.DROP)
            return True
        return False

    def resumed(self, now: float) -> str:
        """A new stream is open on the same connection: what to send first (Sequence, then the replay)."""
        ledger = self.ledger
        if ledger is None:
            raise StateError("stateful reconnect was not negotiated")
        self._fire(ClientEvent.RESUME)
        self._reader = hubjson.RecordReader(self.max_message_size)
        self._last_received = self._last_sent = now
        if ledger.in_last:
            ledger.ack_due = True
            self._ack_at = now + self.ack_interval
        replay = ledger.rewind()
        for seq, record in replay[1:]:
            ledger.sent(seq, record)
        return "".join(record for _, record in replay)

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

    def receive(self, text: str, now: float) -> Incoming:
        """Feed one transport message (whole records); returns what to dispatch, in order."""
        self._last_received = now
        if not text:
            return Incoming([])
        reader = self._reader
        records = reader.feed(text)
        if reader.pending:
            self._reader = hubjson.RecordReader(self.max_message_size)
            raise ProtocolError("a transport message ended inside a record")
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
    ) -> tuple[str, str]:
        """An invocation that expects a completion: (its id, the text to write now, "" while resuming)."""
        invocation_id = self.new_id()
        return invocation_id, self._out(hubjson.encode(Invocation(target, arguments, invocation_id, stream_ids)), now)

    def stream_invocation(
        self, target: str, arguments: list[Any], now: float, stream_ids: list[str] | None = None,
    ) -> tuple[str, str]:
        """A StreamInvocation (a server stream): (its id, the text to write now, "" while resuming)."""
        invocation_id = self.new_id()
        message = StreamInvocation(target, arguments, invocation_id, stream_ids)
        return invocation_id, self._out(hubjson.encode(message), now)

    def message(self, target: str, arguments: list[Any], now: float, stream_ids: list[str] | None = None) -> str:
        """An invocation without a result: the text to write now ("" while resuming)."""
        return self._out(hubjson.encode(Invocation(target, arguments, None, stream_ids)), now)

    def send(self, message: HubMessage, now: float) -> str:
        """Any other message (a StreamItem, a Completion, a CancelInvocation): the text to write now."""
        return self._out(hubjson.encode(message), now, trackable=is_trackable(message))

    def new_id(self) -> str:
        """A new id for an invocation or a client stream (one sequence for both, unique on the connection)."""
        return str(next(self._ids))

    def ping(self, now: float) -> str:
        """A keep-alive ping to write now ("" while resuming)."""
        return self._out(hubjson.PING, now, trackable=False)

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

    def _out(self, record: str, now: float, *, trackable: bool = True) -> str:
        if self.state in UNWRITABLE:
            raise ConnectionError(f"the connection is {self.state.value}")
        ledger = self.ledger
        if trackable and ledger is not None:
            ledger.sent(ledger.number(), record)
        if self.state is ClientState.RESUMING:
            return ""  # a trackable record goes out with the replay; a ping is not needed
        self._last_sent = now
        return record

    # --- time -------------------------------------------------------------------------------

    def tick(self, now: float) -> tuple[str, str | None]:
        """What is due at ``now``: (text to write, "" for none; why the server counts as gone, or None)."""
        if self.state is not ClientState.CONNECTED:
            return "", None
        if now - self._last_received >= self.server_timeout:
            self._last_received = now  # said once per timeout: the driver cuts the stream
            return "", f"nothing from the server for {self.server_timeout} s"
        text = ""
        if now >= self._ack_at and self.ledger is not None:
            self._ack_at = math.inf
            text = self.ledger.take_ack()
        if now - self._last_sent >= self.keepalive_interval:
            text += hubjson.PING
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
