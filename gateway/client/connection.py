"""The connection layer: negotiate, then one transport on the token; ``reopen`` resumes on it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..protocol.negotiate import NegotiateResponse, parse_negotiate_response
from .foreverframe import ForeverFrameTransport
from .http import HttpClient, HttpError, Origin
from .longpolling import LongPollingTransport
from .sse import ServerSentEventsTransport
from .transport import OnClose, OnReceive, Transport
from .websockets import WebSocketsTransport

TRANSPORTS: tuple[type[Transport], ...] = (
    WebSocketsTransport, ServerSentEventsTransport, ForeverFrameTransport, LongPollingTransport,
)
BY_NAME: dict[str, type[Transport]] = {t.name: t for t in TRANSPORTS}


class NoTransport(Exception):
    """None of the transports the server offers is left to try."""


def negotiate_target(origin: Origin, *, stateful: bool = False) -> str:
    """The negotiate request's target: version 1, ForeverFrame listed (this client speaks it), stateful reconnect if
    asked."""
    params = {"negotiateVersion": "1", "foreverFrame": "true", **({"useStatefulReconnect": "true"} if stateful else {})}
    return origin.target("/negotiate", **params)


async def negotiate(
    http: HttpClient, *, stateful: bool = False, headers: Sequence[tuple[str, str]] = (),
) -> NegotiateResponse:
    """POST negotiate (version 1), with ``headers`` (a credential goes here, and only here); raises HttpError."""
    response = await http.request("POST", negotiate_target(http.origin, stateful=stateful), list(headers))
    if response.status != 200:
        raise HttpError(response.status, response.body, "negotiate")
    return parse_negotiate_response(response.body)


class ClientConnection:
    """One negotiated connection carried by one transport at a time."""

    __slots__ = ("origin", "http", "negotiated", "transport", "_on_receive", "_on_close")

    def __init__(
        self, origin: Origin, http: HttpClient, negotiated: NegotiateResponse, transport: str,
        on_receive: OnReceive, on_close: OnClose,
    ) -> None:
        self.origin = origin
        self.http = http
        self.negotiated = negotiated
        self._on_receive = on_receive
        self._on_close = on_close
        self.transport = self._make(transport)

    def _make(self, name: str) -> Transport:
        """A transport whose reports count only while it is this connection's transport."""
        made: list[Transport] = []

        def on_receive(text: str | bytes) -> None:
            if self.transport is made[0]:
                self._on_receive(text)

        def on_close(error: Exception | None) -> None:
            if self.transport is made[0]:
                self._on_close(error)

        made.append(BY_NAME[name](self.origin, self.http, on_receive, on_close))
        return made[0]

    @classmethod
    async def open(
        cls, url: str, choose: Callable[[tuple[str, ...]], str | None], on_receive: OnReceive, on_close: OnClose,
        *, stateful: bool = False, headers: Sequence[tuple[str, str]] = (),
    ) -> ClientConnection:
        """Negotiate, let ``choose`` pick one of the offered transports, open its stream.

        The caller then does the hub handshake. Raises NoTransport when ``choose`` picks none.
        """
        origin = Origin.parse(url)
        http = HttpClient(origin)
        try:
            negotiated = await negotiate(http, stateful=stateful, headers=headers)
            name = choose(negotiated.transports)
            if name is None:
                raise NoTransport(f"offered: {', '.join(negotiated.transports)}")
            connection = cls(origin, http, negotiated, name, on_receive, on_close)
            await connection.transport.connect(negotiated.token)
        except BaseException:
            await http.aclose()
            raise
        return connection

    @property
    def connection_id(self) -> str:
        return self.negotiated.connection_id

    @property
    def token(self) -> str:
        return self.negotiated.token

    @property
    def stateful(self) -> bool:
        return self.negotiated.stateful_reconnect

    async def reopen(self, transport: str | None = None) -> None:
        """Open a new stream on the same token (a resume), on this transport or on ``transport``.

        The current stream, if alive, is cut first.
        """
        await self.transport.abort()
        if transport is not None and transport != self.transport.name:
            if transport not in self.negotiated.transports:
                raise ValueError(f"the server does not offer {transport}")
            self.transport = self._make(transport)
        await self.transport.connect(self.token, resume=True)

    async def send(self, text: str | bytes) -> None:
        await self.transport.send(text)

    async def stop(self, close: str | bytes | None = None) -> None:
        """End the connection; ``close`` is the Close message in the connection's hub protocol (JSON's if None)."""
        try:
            await (self.transport.stop() if close is None else self.transport.stop(close))
        finally:
            await self.http.aclose()
