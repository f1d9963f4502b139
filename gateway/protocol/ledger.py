"""The sequence ledger of stateful reconnect, one per side of a connection, without I/O.

Both the server's ``Connection`` and the client's ``ClientSession`` keep one. Outbound, every
trackable record gets the next sequence id and stays in ``unacked`` until the peer's Ack covers it;
a resume rewinds: a Sequence record naming the first id to resend, then every unacked record.
Inbound, trackable messages are counted, so that the duplicates a peer's replay brings are dropped,
and the last one counted is what the next Ack names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import hubjson
from .errors import ProtocolError
from .messages import Ack, HubMessage, Sequence, is_trackable

Record = tuple[int, Any]
"""A sequence id (0 for an untracked record) and the encoded record, framing included: ``str`` on a Text
hub protocol (JSON), ``bytes`` on a Binary one (MessagePack)."""


class Ledger:
    """Sequence ids both ways: what was sent and is not yet acked, what was received and is to be acked."""

    __slots__ = ("next_out", "unacked", "unacked_bytes", "in_next", "in_last", "ack_due", "duplicates", "encode")

    def __init__(self, encode: Callable[[HubMessage], Any] = hubjson.encode) -> None:
        self.encode = encode
        """The hub protocol's encoder of the Ack and Sequence records this ledger writes."""
        self.next_out = 1
        self.unacked: list[Record] = []  # lists: 56 bytes empty, where a deque is 600+
        self.unacked_bytes = 0
        self.in_next = 1
        self.in_last = 0
        self.ack_due = False
        self.duplicates = 0
        """How many replayed messages were dropped as already received."""

    # --- outbound ---------------------------------------------------------------------------

    def number(self) -> int:
        """The sequence id of the next trackable record."""
        seq = self.next_out
        self.next_out += 1
        return seq

    def sent(self, seq: int, record: Any) -> None:
        """Record ``seq`` has gone out: it waits for its ack."""
        self.unacked.append((seq, record))
        self.unacked_bytes += len(record)

    def acked(self, sequence_id: int) -> None:
        """The peer acknowledged everything up to ``sequence_id``."""
        if sequence_id >= self.next_out:
            raise ProtocolError("Ack of a message never sent")
        unacked = self.unacked
        count = 0
        while count < len(unacked) and unacked[count][0] <= sequence_id:
            self.unacked_bytes -= len(unacked[count][1])
            count += 1
        del unacked[:count]

    def rewind(self, first_queued: int = 0) -> list[Record]:
        """What a resumed stream starts with: Sequence(first id to resend), then every unacked record.

        The unacked records leave the ledger: they are sent again, and ``sent`` again, like new ones.
        ``first_queued`` is the id of the first trackable record queued and never sent, if any.
        """
        first = self.unacked[0][0] if self.unacked else first_queued or self.next_out
        replay = self.unacked
        self.unacked = []
        self.unacked_bytes = 0
        return [(0, self.encode(Sequence(first))), *replay]

    # --- inbound ----------------------------------------------------------------------------

    def accept(self, message: HubMessage) -> bool:
        """Whether to dispatch ``message``; Ack, Sequence and duplicates are consumed here."""
        if isinstance(message, Ack):
            self.acked(message.sequence_id)
            return False
        if isinstance(message, Sequence):
            # a gap only past the last message ever received: ``in_next`` is behind it while a replay that a
            # second resume cut short was being read, and that replay's Sequence is still no gap
            if message.sequence_id > self.in_last + 1 or message.sequence_id < 1:
                raise ProtocolError("Sequence id is beyond the messages sent")
            self.in_next = message.sequence_id
            return False
        if not is_trackable(message):
            return True
        current = self.in_next
        self.in_next += 1
        if current <= self.in_last:
            self.duplicates += 1
            return False
        self.in_last = current
        self.ack_due = True
        return True

    def take_ack(self) -> Any:
        """The Ack record to send if one is due, else "" (falsy whatever the protocol)."""
        if not self.ack_due:
            return ""
        self.ack_due = False
        return self.encode(Ack(self.in_last))
