"""server/lookup.py: what a token names, as a value; and the closed connections kept a while."""

from __future__ import annotations

from serverparts import Recorder, handshaken, parts

from gateway.server.asgi import Request
from gateway.server.lookup import LINGER_SECONDS, Closed, Found, HeldElsewhere, Lingering, Tokens, Unknown


def request(method: str = "GET", kind: str = "http") -> Request:
    return Request({"type": kind, "method": method, "path": "/", "headers": []})


async def test_each_outcome() -> None:
    p = parts(Recorder())
    tokens = Tokens("hub", p.registry, p.backplane, p.closed)
    conn = await handshaken(p)
    assert await tokens.lookup(conn.token, request("POST")) == Found(conn)
    assert await tokens.lookup("other", request("POST")) == HeldElsewhere("other")
    assert await tokens.lookup("other", request("DELETE")) == HeldElsewhere("other")
    assert await tokens.lookup("other", request()) == Unknown("other")
    conn.close("bye")  # no stream carried the Close message: it is kept for a poll
    assert await tokens.lookup(conn.token, request(kind="websocket")) == Unknown(conn.token)
    assert await tokens.lookup(conn.token, request()) == Lingering(conn)
    assert await tokens.lookup(conn.token, request()) == Unknown(conn.token)  # taken once


async def test_closed_connections_are_forgotten_after_the_linger_time() -> None:
    p = parts(Recorder())
    conn = await handshaken(p)
    closed = Closed()
    closed.keep(conn, 100.0)
    closed.expire(100.0 + LINGER_SECONDS - 0.01)
    assert len(closed) == 1
    closed.expire(100.0 + LINGER_SECONDS)
    assert len(closed) == 0 and closed.take(conn.token) is None
