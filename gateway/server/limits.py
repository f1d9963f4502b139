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
