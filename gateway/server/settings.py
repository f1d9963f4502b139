"""Every timing and limit of a gateway, in one frozen object: ``Gateway(hub, settings=Settings(...))``.

Seconds and bytes throughout. The README's settings table lists the same fields with the same defaults,
and a test compares the two. Adding a setting is one field here (its default and a one-line docstring)
and one row there; a per-connection one also goes in ``protocol.Limits``, which ``limits`` fills by name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..protocol import Limits


@dataclass(frozen=True, slots=True)
class Settings:
    """The timings and limits of one gateway, with their defaults."""

    keepalive_interval: float = 15.0
    """A ping goes to the client after this long without sending it anything (not on long polling)."""
    client_timeout: float = 30.0
    """A connection whose client sent nothing for this long is closed."""
    handshake_timeout: float = 15.0
    """A negotiated connection that has not completed the hub handshake by then is closed."""
    disconnect_timeout: float = 45.0
    """A connection with no stream attached lives this long: over the clients' 30 s server timeout plus a resume."""
    poll_timeout: float = 20.0
    """A long poll with nothing to deliver is answered empty after this long."""
    send_timeout: float = 30.0
    """A write to the client blocked this long closes the connection (slow consumer); a POST body this slow is a 408."""
    max_message_size: int = 32 * 1024
    """The largest hub message a client may send; a larger one closes the connection."""
    max_buffer: int = 1024 * 1024
    """Bytes queued for or unacknowledged by one client before it is closed as a slow consumer."""
    max_frame_size: int = 1024 * 1024
    """The largest WebSocket message (all its frames); a larger one closes the connection with 1009."""
    max_batch: int = 256
    """Records parsed and dispatched in one go; a message holding more is handled in batches, yielding between them."""
    max_body: int = 1024 * 1024
    """The largest POST body; a larger one is a 413 and closes the connection."""
    max_connections: int = 100_000
    """Connections this process holds for this hub; negotiate answers 503 beyond it."""
    max_groups_per_connection: int = 100
    """Groups one connection may belong to."""
    pending_timeout: float = 5.0
    """A negotiated connection that no stream has come for ("pending") is closed after this long."""
    max_pending: int = 2_000
    """Pending connections at once, apart from ``max_connections``; negotiate answers 503 beyond it."""
    max_pending_per_client: int = 500
    """Pending connections one client address may hold; negotiate answers 429 beyond it."""
    busy_retry_after: int = 5
    """The Retry-After of the 503 that negotiate answers once ``max_connections`` is reached."""
    closed_linger: float = 5.0
    """How long a closed long-polling connection keeps its Close message for the poll that comes for it."""
    bad_token_limit: int = 30
    """Requests with an unknown connection token one client address may make per window before 429s."""
    bad_token_window: float = 10.0
    """The window of ``bad_token_limit``."""
    bad_token_clients: int = 10_000
    """Client addresses the unknown-token limiter remembers (the oldest is forgotten first)."""
    max_streams_per_connection: int = 16
    """Streams (server-to-client and client-to-server) open at once on one connection; more are refused."""
    max_client_results_per_connection: int = 16
    """Client results the server may await at once from one connection; more raise ``ClientResultError``."""
    client_result_timeout: float = 30.0
    """How long ``invoke`` awaits a client's answer when it names no timeout (then ``ClientResultTimeout``)."""
    stream_buffer: int = 256 * 1024
    """Bytes a connection's output (unsent or unacked) may hold before its streams wait (at most max_buffer/2)."""
    upload_buffer: int = 256
    """Items of one client stream waiting for its hub method; beyond them, reading the connection waits."""

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"Settings.{field.name} must be positive, not {getattr(self, field.name)!r}")

    @property
    def limits(self) -> Limits:
        """The per-connection part, as the sans-IO core takes it."""
        return Limits(**{field.name: getattr(self, field.name) for field in fields(Limits)})


__all__ = ["Settings"]
