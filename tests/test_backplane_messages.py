"""backplane/messages.py: every message survives encode/decode; anything else is a ValueError."""

from __future__ import annotations

import pytest

from gateway.backplane.messages import (
    ConnectionState,
    Forward,
    GroupChange,
    Handover,
    HandoverState,
    Message,
    Reply,
    Send,
    Target,
    decode,
    encode,
)
from gateway.protocol import hubjson, hubmsgpack
from gateway.protocol.broadcast import Broadcast
from gateway.protocol.hubprotocols import JSON, MESSAGEPACK

STATE = ConnectionState("cid", "tok", None, ("a", "b"), {"next_id": 3})


@pytest.mark.parametrize("message", [
    Send("hub", Target("group", ("a", "b"), ("x",)), Broadcast("progress", [1])),
    GroupChange("hub", "cid", "room", add=False),
    Handover("hub", "cid", "n1", "n2", "q"),
    HandoverState("q", STATE),
    HandoverState("q", None),
    Forward("hub", "cid", "post", "body", "n1", "q"),
    Reply("q", 409, "busy"),
])
def test_round_trip(message: Message) -> None:
    decoded = decode(encode(message))
    assert decoded == message and type(decoded) is type(message)
    if isinstance(message, HandoverState) and message.state is not None:
        assert isinstance(decoded, HandoverState) and decoded.state is not None
        assert decoded.state.core == STATE.core


def test_a_send_carries_the_record_of_every_protocol_that_can_carry_it() -> None:
    both = decode(encode(Send("hub", Target("all"), Broadcast("m", [{"a": 1}]))))
    assert isinstance(both, Send)
    assert both.record.record(JSON) == hubjson.encode_invocation("m", [{"a": 1}])
    assert both.record.record(MESSAGEPACK) == hubmsgpack.encode_invocation("m", [{"a": 1}])
    binary = decode(encode(Send("hub", Target("all"), Broadcast("m", [b"\x00\xff"]))))
    assert isinstance(binary, Send)
    assert binary.record.record(JSON) is None
    assert binary.record.record(MESSAGEPACK) == hubmsgpack.encode_invocation("m", [b"\x00\xff"])


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"type": "nope"}', '{"type": "reply", "corr": "q"}',
    '{"type": "forward", "hub": "h", "connection_id": "c", "op": "put", "body": "", "from_node": "n", "corr": "q"}',
    '{"k": "send", "h": "hub", "t": ["all", [], []], "r": "x"}',
])
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        decode(text)
