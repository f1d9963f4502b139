"""server/lookup.py: what a token names, as a value; and the closed connections kept a while."""

from __future__ import annotations

import asyncio

from serverparts import Recorder, handshaken, parts

from gateway.backplane import InProcessBackplane
from gateway.server.asgi import Request
from gateway.server.lookup import Closed, Found, HeldElsewhere, Lingering, Tokens, Unknown


def request(method: str = "GET", kind: str = "http") -> Request:
    return Request({"type": kind, "method": method, "path": "/", "headers": []})


async def test_each_outcome() -> None:
    p = parts(Recorder())
    tokens = Tokens("hub", p.registry, p.backplane, p.closed)
    conn = await handshaken(p)
    assert await tokens.lookup(conn.token, request("POST")) == Found(conn)
    assert await tokens.lookup("other", request("POST")) == Unknown("other")  # no other process holds it
    assert await tokens.lookup("other", request("DELETE")) == Unknown("other")
    assert await tokens.lookup("other", request()) == Unknown("other")
    conn.close("bye")  # no stream carried the Close message: it is kept for a GET, in its transport's framing
    assert await tokens.lookup(conn.token, request("POST")) == Unknown(conn.token)
    assert await tokens.lookup(conn.token, request(kind="websocket")) == Lingering(conn)
    assert await tokens.lookup(conn.token, request()) == Unknown(conn.token)  # taken once


class ElsewhereBackplane(InProcessBackplane):
    """A backplane whose directory names another process as the holder of every token."""

    async def held_elsewhere(self, hub: str, token: str) -> bool:
        return True


async def test_a_post_for_a_connection_another_process_holds_is_held_elsewhere() -> None:
    p = parts(Recorder())
    tokens = Tokens("hub", p.registry, ElsewhereBackplane(), p.closed)
    assert await tokens.lookup("other", request("POST")) == HeldElsewhere("other")
    assert await tokens.lookup("other", request("DELETE")) == HeldElsewhere("other")
    assert await tokens.lookup("other", request()) == Unknown("other")


async def test_closed_connections_are_forgotten_after_the_linger_time() -> None:
    p = parts(Recorder())
    conn = await handshaken(p)
    closed = Closed(0.05)
    closed.keep(conn)
    assert len(closed) == 1
    await asyncio.sleep(0.2)
    assert len(closed) == 0 and closed.take(conn.token) is None
