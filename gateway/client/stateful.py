"""The client's half of stateful reconnect, without I/O: sequence ids both ways, acks, replay."""

from __future__ import annotations

from collections import deque

from ..protocol import hubjson
from ..protocol.errors import ProtocolError
from ..protocol.messages import Ack, HubMessage, Sequence, is_trackable


class Ledger:
    """Counts the trackable messages sent and received, keeps the sent ones until acked.

    ``sent`` records what goes out, ``accept`` filters what comes in (it handles Ack and Sequence
    and drops duplicates after a resume), ``replay`` is what to send first on a new stream.
    """

    __slots__ = ("_next_out", "_unacked", "_in_next", "_in_last", "ack_due", "duplicates")

    def __init__(self) -> None:
        self._next_out = 1
        self._unacked: deque[tuple[int, str]] = deque()
        self._in_next = 1
        self._in_last = 0
        self.ack_due = False
        self.duplicates = 0
        """How many replayed messages were dropped as already received."""

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    @property
    def last_received(self) -> int:
        return self._in_last

    def sent(self, record: str) -> None:
        """A trackable record (0x1E included) is being sent."""
        self._unacked.append((self._next_out, record))
        self._next_out += 1

    def replay(self) -> str:
        """Sequence(first unacked, or the next id) followed by every unacked record, in order."""
        first = self._unacked[0][0] if self._unacked else self._next_out
        return hubjson.encode(Sequence(first)) + "".join(record for _, record in self._unacked)

    def accept(self, message: HubMessage) -> bool:
        """Whether to dispatch ``message``; Ack, Sequence and duplicates are consumed here."""
        if isinstance(message, Ack):
            if message.sequence_id >= self._next_out:
                raise ProtocolError("Ack of a message never sent")
            while self._unacked and self._unacked[0][0] <= message.sequence_id:
                self._unacked.popleft()
            return False
        if isinstance(message, Sequence):
            if message.sequence_id > self._in_next or message.sequence_id < 1:
                raise ProtocolError("Sequence id is beyond the messages received")
            self._in_next = message.sequence_id
            return False
        if not is_trackable(message):
            return True
        current = self._in_next
        self._in_next += 1
        if current <= self._in_last:
            self.duplicates += 1
            return False
        self._in_last = current
        self.ack_due = True
        return True

    def take_ack(self) -> str | None:
        """The Ack record to send, if one is due."""
        if not self.ack_due:
            return None
        self.ack_due = False
        return hubjson.encode(Ack(self._in_last))
