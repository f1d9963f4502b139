"""Rate limiting of bad tokens: guessing gets 404s, and then, from one client, 429s. Time is an argument."""

from __future__ import annotations

from collections import deque


class BadTokenLimiter:
    """Allows ``limit`` unknown-token requests per client address within ``window`` seconds."""

    __slots__ = ("limit", "window", "_hits", "_max_clients")

    def __init__(self, limit: int = 30, window: float = 10.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._max_clients = max_clients

    def _recent(self, client: str, now: float) -> deque[float]:
        hits = self._hits.get(client)
        if hits is None:
            if len(self._hits) >= self._max_clients:  # bounded memory: forget the oldest client
                self._hits.pop(next(iter(self._hits)))
            hits = self._hits[client] = deque()
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        return hits

    def blocked(self, client: str, now: float) -> float:
        """Seconds until ``client`` may try again (0.0 when it may now)."""
        hits = self._hits.get(client)
        if hits is None:
            return 0.0
        hits = self._recent(client, now)
        if len(hits) < self.limit:
            return 0.0
        return self.window - (now - hits[0])

    def miss(self, client: str, now: float) -> None:
        """Record one request with an unknown token."""
        self._recent(client, now).append(now)


class PendingLimiter:
    """Connections negotiated that no stream has attached to yet ("pending"): a lifetime and caps of their own.

    A real client connects right after it negotiates; a client that only negotiates costs a connection's memory
    for nothing. Pending connections may live ``lifetime`` seconds; at most ``max_total`` of them, and
    ``max_per_client`` per client address, exist at once. All share one lifetime, so they expire in the order
    they were made: the oldest are at the head of an insertion-ordered dict. Time is an argument.
    """

    __slots__ = ("lifetime", "max_total", "max_per_client", "_pending", "_per_client", "_peak")

    def __init__(self, lifetime: float = 5.0, max_total: int = 2_000, max_per_client: int = 500) -> None:
        self.lifetime = lifetime
        self.max_total = max_total
        self.max_per_client = max_per_client
        self._pending: dict[str, tuple[float, str]] = {}  # connection id -> (created, client)
        self._per_client: dict[str, int] = {}
        self._peak = 0  # the most pending at once since the tables were last compacted

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, connection_id: str) -> bool:
        return connection_id in self._pending

    def refused(self, client: str) -> tuple[int, str] | None:
        """(status, error) when one more pending connection is not allowed, for ``client`` or at all."""
        if self._per_client.get(client, 0) >= self.max_per_client:
            return 429, f"too many connections from this client that never connected (at most {self.max_per_client})"
        if len(self._pending) >= self.max_total:
            return 503, "too many connections that never connected"
        return None

    def add(self, connection_id: str, client: str, now: float) -> None:
        self._pending[connection_id] = (now, client)
        self._per_client[client] = self._per_client.get(client, 0) + 1
        self._peak = max(self._peak, len(self._pending))

    def discard(self, connection_id: str) -> None:
        """The connection got a stream, or closed: it is pending no more."""
        entry = self._pending.pop(connection_id, None)
        if entry is None:
            return
        count = self._per_client[entry[1]] - 1
        if count:
            self._per_client[entry[1]] = count
        else:
            del self._per_client[entry[1]]

    def due(self, now: float) -> bool:
        """Whether the oldest pending connection's lifetime is over."""
        for created, _ in self._pending.values():
            return now - created >= self.lifetime
        return False

    def expired(self, now: float, limit: int) -> list[str]:
        """The ids of up to ``limit`` pending connections whose lifetime is over (the caller closes them)."""
        due: list[str] = []
        for connection_id, (created, _) in self._pending.items():
            if now - created < self.lifetime or len(due) >= limit:
                break
            due.append(connection_id)
        for connection_id in due:
            self.discard(connection_id)
        return due

    def shrunk(self, threshold: int = 1024) -> bool:
        """True once after the pending count fell from ``threshold`` or more to a quarter of its peak: the
        dicts (which never shrink by themselves) are rebuilt, and the caller may compact its own tables."""
        if self._peak < threshold or len(self._pending) * 4 > self._peak:
            return False
        self._pending = dict(self._pending)
        self._per_client = dict(self._per_client)
        self._peak = len(self._pending)
        return True
