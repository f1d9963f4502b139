"""One client call for many connections, whatever hub protocol each speaks, without I/O.

A group send reaches JSON and MessagePack connections alike. ``Broadcast`` carries the call and its
records: each protocol's record is encoded at most once, on first need, and the same ``str`` or ``bytes``
object is then pushed to every connection of that protocol. A broadcast from another process arrives as
its records only (``Broadcast.of``).
"""

from __future__ import annotations

from typing import Any

from .hubprotocols import JSON, PROTOCOLS, HubProtocol


class Broadcast:
    """A non-blocking invocation of ``target(*arguments)`` on clients, encoded once per hub protocol.

    A protocol that cannot carry the arguments (bytes in JSON, an integer over 64 bits in MessagePack) has no
    record: its connections are skipped (``record`` returns None). ``check`` raises when no protocol can.
    """

    __slots__ = ("target", "arguments", "_records")

    def __init__(self, target: str, arguments: list[Any]) -> None:
        self.target = target
        self.arguments = arguments
        self._records: dict[str, Any] = {}

    @classmethod
    def of(cls, records: dict[str, str | bytes]) -> Broadcast:
        """A broadcast known only by its records (one per protocol name), as another process encoded them."""
        broadcast = cls("", [])
        broadcast._records = {name: records.get(name) for name in PROTOCOLS}
        return broadcast

    def record(self, protocol: HubProtocol[Any]) -> Any:
        """The record for ``protocol`` (``str`` or ``bytes``, framing included), or None if it cannot carry it."""
        records = self._records
        name = protocol.name
        if name in records:
            return records[name]
        try:
            record = protocol.encode_invocation(self.target, self.arguments)
        except (TypeError, ValueError):
            record = None
        records[name] = record
        return record

    def check(self) -> None:
        """Encode for JSON now (for MessagePack if JSON cannot); TypeError if neither can carry the arguments."""
        if self.record(JSON) is None and all(self.record(p) is None for p in PROTOCOLS.values()):
            raise TypeError(f"the arguments of {self.target!r} cannot be encoded in any hub protocol")

    def records(self) -> dict[str, str | bytes]:
        """Every protocol's record that exists, encoding the missing ones (what crosses to other processes)."""
        forms = {name: self.record(protocol) for name, protocol in PROTOCOLS.items()}
        return {name: form for name, form in forms.items() if form is not None}

    def __repr__(self) -> str:
        return f"<Broadcast {self.target!r} {sorted(k for k, v in self._records.items() if v is not None)}>"
