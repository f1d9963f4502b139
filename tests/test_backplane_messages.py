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

STATE = ConnectionState("cid", "tok", None, ("a", "b"), {"next_id": 3})


@pytest.mark.parametrize("message", [
    Send("hub", Target("group", ("a", "b"), ("x",)), "record\x1e"),
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


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"type": "nope"}', '{"type": "reply", "corr": "q"}',
    '{"type": "forward", "hub": "h", "connection_id": "c", "op": "put", "body": "", "from_node": "n", "corr": "q"}',
    '{"k": "send", "h": "hub", "t": ["all", [], []], "r": "x"}',
])
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        decode(text)
