"""server/node.py: a connection handed over and adopted keeps its output, groups and user; forwarded ops."""

from __future__ import annotations

from serverparts import Recorder, handshaken, invoke, parts

from gateway.backplane import Target
from gateway.backplane.messages import GroupChange, Send
from gateway.protocol.broadcast import Broadcast


def json_only(record: str) -> Broadcast:
    return Broadcast.of({"json": record})


async def test_a_connection_moves_with_its_state_and_the_ops_sent_meanwhile() -> None:
    old, new = parts(Recorder()), parts(Recorder())
    conn = await handshaken(old, user="ann", stateful=True)
    old.registry.group_add(conn.id, "room")
    old.node.deliver(Target("group", ("room",)), json_only("queued\x1e"))
    state = old.node.export_connection(conn.id)
    assert state is not None and state.groups == ("room",) and state.user == "ann"
    assert conn.id not in old.registry.by_id and old.node.export_connection(conn.id) is None
    ops = [Send("hub", Target("user", ("ann",)), json_only("meanwhile\x1e")),
           Send("hub", Target("user", ("bob",)), json_only("no\x1e")),
           GroupChange("hub", conn.id, "lobby", add=True), GroupChange("hub", "someone-else", "x", add=True)]
    new.node.adopt_connection(state, ops)
    moved = new.registry.by_id[conn.id]
    assert moved.groups == {"room", "lobby"} and moved.user == "ann"
    assert moved.core.take(0.0).split("\x1e")[:2] == ["queued", "meanwhile"]


async def test_forwarded_requests_are_answered_by_the_holder() -> None:
    p = parts(recorder := Recorder())
    conn = await handshaken(p)
    assert await p.node.forwarded(conn.id, "post", invoke("x")) == (200, None)
    assert len(recorder.messages) == 2  # the handshake, then the invocation
    assert await p.node.forwarded("gone", "post", "") == (410, None)
    assert await p.node.forwarded(conn.id, "invalid", "") == (400, "the body is not valid UTF-8")
    other = await handshaken(p)
    assert await p.node.forwarded(other.id, "delete", "") == (202, None)
    assert other.id not in p.registry.by_id
