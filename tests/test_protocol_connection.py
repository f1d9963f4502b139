"""The connection state machine: transitions, handshake, deadlines, outbox, acks and replay."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocol import hubjson, hubmsgpack
from gateway.protocol.connection import TRANSITIONS, Connection, Event, Limits, Received, State
from gateway.protocol.errors import OutboxOverflow, ProtocolError, StateError
from gateway.protocol.hubjson import HANDSHAKE_OK, PING, RS, RecordReader
from gateway.protocol.messages import Ack, Close, HubMessage, Invocation, Ping, Sequence, is_trackable

HANDSHAKE = hubjson.encode_handshake_request()


def inv(n: int) -> str:
    return hubjson.encode(Invocation("m", [n]))


def connected(*, stateful: bool = False, limits: Limits | None = None, pings: bool = True) -> Connection:
    """A connection at t=0 with a stream attached and the handshake done and sent."""
    conn = Connection(0.0, stateful=stateful, limits=limits)
    conn.attach(0.0, pings=pings)
    conn.receive(HANDSHAKE, 0.0)
    assert conn.take(0.0) == HANDSHAKE_OK
    return conn


def state_of(conn: Connection) -> State:
    return conn.state  # read through a call, so that the type checker does not narrow it


def parse(text: str) -> list[HubMessage]:
    return [hubjson.parse_message(r) for r in RecordReader().feed(text)]


# --- the transition table ------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "event"), list(itertools.product(State, Event)))
def test_transition_table(state: State, event: Event) -> None:
    conn = Connection(0.0)
    conn.state = state
    target = TRANSITIONS.get((state, event))
    if target is None:
        with pytest.raises(StateError, match=f"can't handle event {event.value} in state {state.value}"):
            conn._fire(event)
        assert conn.state is state
    else:
        conn._fire(event)
        assert conn.state is target


def test_every_state_is_reachable_and_closable() -> None:
    targets = set(TRANSITIONS.values()) | {State.NEGOTIATED}
    assert targets == set(State)
    assert all((state, Event.CLOSE) in TRANSITIONS for state in State)


def test_attach_to_a_closed_connection_is_a_state_error() -> None:
    conn = Connection(0.0)
    conn.close()
    with pytest.raises(StateError, match="can't handle event attach in state closed"):
        conn.attach(1.0)


# --- lifecycle through the public API ---------------------------------------------------------------


def test_handshake_on_an_attached_stream() -> None:
    conn = Connection(0.0)
    assert state_of(conn) is State.NEGOTIATED and not conn.attached and not conn.handshaken
    assert conn.attach(0.0) == 1
    assert state_of(conn) is State.CONNECTING and conn.attached
    assert conn.receive(HANDSHAKE, 0.5) == Received([], handshake=True)
    assert state_of(conn) is State.CONNECTED and conn.handshaken
    assert conn.has_output
    assert conn.take(0.5) == HANDSHAKE_OK
    assert not conn.has_output


def test_handshake_before_any_stream() -> None:
    """Long polling: the handshake may be POSTed before the poll that carries its response."""
    conn = Connection(0.0)
    assert conn.receive(HANDSHAKE, 0.0).handshake
    assert state_of(conn) is State.DETACHED
    conn.attach(0.1)
    assert state_of(conn) is State.CONNECTED
    assert conn.take(0.1) == HANDSHAKE_OK


def test_handshake_and_messages_in_one_batch() -> None:
    conn = Connection(0.0)
    conn.attach(0.0)
    received = conn.receive(HANDSHAKE + inv(1) + PING, 0.0)
    assert received == Received([Invocation("m", [1]), Ping()], handshake=True)


def test_handshake_split_anywhere() -> None:
    conn = Connection(0.0)
    conn.attach(0.0)
    for char in (HANDSHAKE + inv(1))[:-1]:
        assert conn.receive(char, 0.0).messages == []
    assert conn.handshaken
    assert conn.receive(RS, 0.0) == Received([Invocation("m", [1])])


def test_messages_pushed_before_the_handshake_follow_its_response() -> None:
    conn = Connection(0.0)
    conn.attach(0.0)
    conn.push(inv(1))
    conn.receive(HANDSHAKE, 0.0)
    assert conn.take(0.0) == HANDSHAKE_OK + inv(1)


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ("hello" + RS, "malformed handshake: invalid JSON"),
        ('{"protocol":"json"}' + RS, "malformed handshake: missing required property 'version'"),
        ('{"protocol":"json","version":"1"}' + RS, "malformed handshake: property 'version' has the wrong type"),
        ('{"type":6}' + RS, "malformed handshake: missing required property 'protocol'"),
    ],
)
def test_malformed_handshake(record: str, error: str) -> None:
    conn = Connection(0.0)
    conn.attach(0.0)
    with pytest.raises(ProtocolError, match=error):
        conn.receive(record, 0.0)
    assert not conn.handshaken
    response = hubjson.parse_handshake_response(conn.take(0.0)[:-1])  # the client learns why
    assert response.error is not None and response.error.startswith(error)


@pytest.mark.parametrize(("protocol", "version"), [("xml", 1), ("json", 3), ("messagepack", 3)])
def test_unsupported_protocol_queues_an_error_response(protocol: str, version: int) -> None:
    conn = Connection(0.0)
    conn.attach(0.0)
    with pytest.raises(ProtocolError, match="is not available"):
        conn.receive(hubjson.encode_handshake_request(protocol, version), 0.0)
    response = hubjson.parse_handshake_response(conn.take(0.0)[:-1])
    assert response.error == f"Requested protocol '{protocol}' version {version} is not available."


def test_malformed_message_after_the_handshake() -> None:
    conn = connected()
    with pytest.raises(ProtocolError, match="invalid JSON"):
        conn.receive("{oops" + RS, 1.0)


def test_unknown_message_types_are_ignored_and_reported_once() -> None:
    conn = connected(stateful=True)
    received = conn.receive('{"type":42}' + RS + inv(1) + '{"type":0,"x":1}' + RS, 1.0)
    assert received.messages == parse(inv(1)) and received.unknown == 42
    received = conn.receive('{"type":43}' + RS + inv(2), 1.0)
    assert received.messages == parse(inv(2)) and received.unknown is None
    assert conn.ignored == 3
    assert conn.take(1.0) == hubjson.encode(Ack(2))  # unknown messages take no sequence id


def test_a_long_text_is_received_in_batches() -> None:
    conn = connected(limits=Limits(max_batch=3))
    received = conn.receive("".join(inv(n) for n in range(8)) + inv(8)[:5], 1.0)
    batches = [received.messages]
    while received.more:
        received = conn.receive("", 1.0)
        batches.append(received.messages)
    assert [len(b) for b in batches] == [3, 3, 2]
    assert [m for b in batches for m in b] == parse("".join(inv(n) for n in range(8)))
    assert conn.receive(inv(8)[5:], 1.0) == Received(parse(inv(8)))


def test_the_handshake_and_a_batch_arrive_together() -> None:
    conn = Connection(0.0, limits=Limits(max_batch=2))
    conn.attach(0.0)
    received = conn.receive(HANDSHAKE + inv(1) + inv(2), 0.0)
    assert received.handshake and received.messages == parse(inv(1)) and received.more
    assert conn.receive("", 0.0) == Received(parse(inv(2)))


def test_oversized_message() -> None:
    conn = connected(limits=Limits(max_message_size=100))
    conn.receive(hubjson.encode(Invocation("m", ["x" * 50])), 1.0)
    with pytest.raises(ProtocolError, match="exceeds the limit of 100 bytes") as info:
        conn.receive(hubjson.encode(Invocation("m", ["x" * 100])), 1.0)
    assert info.value.status == 413


def test_detach_and_reattach() -> None:
    conn = connected()
    assert conn.detach(1, 1.0)
    assert state_of(conn) is State.DETACHED
    assert not conn.detach(1, 1.0)
    assert conn.attach(2.0) == 2
    assert state_of(conn) is State.CONNECTED


def test_a_new_stream_replaces_the_attached_one() -> None:
    conn = connected()
    assert conn.attach(1.0) == 2
    assert state_of(conn) is State.CONNECTED
    assert not conn.detach(1, 1.5)  # the replaced stream ends late: no effect
    assert state_of(conn) is State.CONNECTED
    assert conn.detach(2, 2.0)


def test_a_cut_ends_the_attached_stream_and_waits_for_a_resume() -> None:
    conn = connected()
    assert conn.cut(1.0)
    assert state_of(conn) is State.DETACHED and conn.generation == 2
    assert not conn.detach(1, 1.5)  # the cut stream's I/O ends late: no effect
    assert not conn.cut(2.0)  # nothing attached
    assert conn.attach(3.0, resume=True) == 3
    assert state_of(conn) is State.CONNECTED


def test_a_stream_that_ends_before_the_handshake() -> None:
    conn = Connection(0.0)
    generation = conn.attach(0.0)
    assert conn.detach(generation, 1.0)
    assert state_of(conn) is State.NEGOTIATED


def test_close_queues_a_close_message() -> None:
    conn = connected()
    conn.close("server shutting down")
    assert state_of(conn) is State.CLOSED
    assert conn.close_reason == "server shutting down"
    assert parse(conn.take(1.0)) == [Close("server shutting down")]
    conn.close("again")  # closing twice is harmless
    assert conn.close_reason == "server shutting down"
    assert not conn.has_output


def test_a_close_may_let_the_client_reconnect() -> None:
    conn = connected()
    conn.close("server shutting down", allow_reconnect=True)
    assert conn.take(1.0) == '{"type":7,"error":"server shutting down","allowReconnect":true}\x1e'


def test_close_without_notice_or_before_the_handshake() -> None:
    conn = connected()
    conn.close(notify=False)
    assert conn.take(1.0) == ""
    early = Connection(0.0)
    early.attach(0.0)
    early.close("bye")
    assert early.take(0.0) == ""


def test_a_closed_connection_ignores_pushes_and_refuses_input() -> None:
    conn = connected()
    conn.close()
    conn.take(1.0)
    conn.push(inv(1))
    assert not conn.has_output
    with pytest.raises(ProtocolError, match="the connection is closed") as info:
        conn.receive(inv(1), 1.0)
    assert info.value.status == 404
    assert conn.tick(1000.0) is None


# --- deadlines -------------------------------------------------------------------------------------


def test_keepalive_ping_after_the_interval() -> None:
    conn = connected()
    assert conn.tick(14.9) is None
    assert not conn.has_output
    assert conn.tick(15.0) is None
    assert conn.take(15.0) == PING
    assert conn.tick(29.9) is None
    assert not conn.has_output


def test_keepalive_counts_from_the_last_write() -> None:
    conn = connected()
    conn.push(inv(1))
    conn.take(10.0)
    conn.tick(20.0)
    assert not conn.has_output
    conn.tick(25.0)
    assert conn.take(25.0) == PING


def test_keepalive_queues_one_ping_while_unsent() -> None:
    conn = connected()
    conn.tick(15.0)
    conn.tick(20.0)
    assert conn.take(20.0) == PING


def test_no_ping_when_output_is_queued() -> None:
    conn = connected()
    conn.push(inv(1))
    conn.tick(16.0)
    assert conn.take(16.0) == inv(1)


def test_no_ping_when_pings_are_disabled() -> None:
    """Long polling needs no keep-alive."""
    conn = connected(pings=False)
    conn.tick(20.0)
    assert not conn.has_output


@pytest.mark.parametrize("state", [State.CONNECTING, State.DETACHED])
def test_no_ping_unless_connected(state: State) -> None:
    limits = Limits(handshake_timeout=100.0, disconnect_timeout=100.0)
    conn = Connection(0.0, limits=limits)
    if state is State.CONNECTING:
        conn.attach(0.0)
    else:
        conn.receive(HANDSHAKE, 0.0)
        conn.take(0.0)
    assert conn.state is state
    assert conn.tick(20.0) is None
    assert conn.take(20.0) in ("", HANDSHAKE_OK)


def test_client_timeout() -> None:
    conn = connected()
    conn.receive(PING, 10.0)
    assert conn.tick(39.9) is None
    assert conn.tick(40.0) == "client timeout"


def test_attach_resets_the_client_timeout() -> None:
    conn = connected(limits=Limits(disconnect_timeout=100.0))
    conn.detach(1, 5.0)
    conn.attach(25.0)
    assert conn.tick(54.9) is None
    assert conn.tick(55.0) == "client timeout"


def test_handshake_timeout() -> None:
    limits = Limits(handshake_timeout=5.0, disconnect_timeout=100.0)
    conn = Connection(0.0, limits=limits)
    assert conn.tick(4.9) is None
    assert conn.tick(5.0) == "handshake timeout"
    attached = Connection(0.0, limits=limits)
    attached.attach(3.0)
    assert attached.tick(5.0) == "handshake timeout"


def test_no_handshake_timeout_after_the_handshake() -> None:
    conn = connected(limits=Limits(handshake_timeout=5.0))
    conn.receive(PING, 9.0)
    assert conn.tick(10.0) is None


def test_disconnect_timeout() -> None:
    conn = connected(limits=Limits(disconnect_timeout=15.0))
    conn.detach(1, 10.0)
    assert conn.tick(24.9) is None
    assert conn.tick(25.0) == "disconnect timeout"


def test_no_disconnect_timeout_while_attached() -> None:
    conn = connected(limits=Limits(client_timeout=1000.0))
    conn.detach(1, 10.0)
    conn.attach(20.0)
    assert conn.tick(100.0) is None


def test_a_negotiated_connection_without_a_stream_times_out() -> None:
    conn = Connection(0.0, limits=Limits(handshake_timeout=100.0, disconnect_timeout=15.0))
    assert conn.tick(15.0) == "disconnect timeout"


# --- outbox ----------------------------------------------------------------------------------------


def test_take_returns_everything_in_order() -> None:
    conn = connected()
    for n in range(3):
        conn.push(inv(n))
    conn.push_message(Ping())
    assert conn.take(1.0) == inv(0) + inv(1) + inv(2) + PING
    assert conn.take(1.0) == ""


def test_outbox_overflow() -> None:
    record = inv(1)
    conn = connected(limits=Limits(max_buffer=3 * len(record)))
    for _ in range(3):
        conn.push(record)
    with pytest.raises(OutboxOverflow, match=f"exceed the limit of {3 * len(record)}"):
        conn.push(record)


def test_non_stateful_connections_never_buffer() -> None:
    record = inv(1)
    conn = connected(limits=Limits(max_buffer=2 * len(record)))
    for _ in range(100):
        conn.push(record)
        conn.push(record)
        assert conn.take(1.0) == record + record
    conn.detach(1, 2.0)
    conn.attach(3.0, resume=True)
    assert conn.take(3.0) == ""


def test_non_stateful_connections_ignore_ack_and_sequence() -> None:
    conn = connected()
    text = hubjson.encode(Ack(5)) + hubjson.encode(Sequence(9)) + inv(1) + inv(1)
    assert conn.receive(text, 1.0).messages == [Invocation("m", [1]), Invocation("m", [1])]
    assert conn.take(1.0) == ""


# --- stateful reconnect ---------------------------------------------------------------------------


def resume(conn: Connection, now: float) -> list[HubMessage]:
    """Drop the current stream, attach a new one as a resume and return what it gets first."""
    conn.detach(conn.generation, now)
    conn.attach(now, resume=True)
    return parse(conn.take(now))


def test_unacked_records_count_against_the_buffer() -> None:
    record = inv(1)
    conn = connected(stateful=True, limits=Limits(max_buffer=3 * len(record)))
    for _ in range(3):
        conn.push(record)
    conn.take(1.0)
    with pytest.raises(OutboxOverflow):
        conn.push(record)


def test_acks_release_the_buffer() -> None:
    record = inv(1)
    conn = connected(stateful=True, limits=Limits(max_buffer=3 * len(record)))
    for n in range(1, 31):
        conn.push(record)
        conn.take(1.0)
        conn.receive(hubjson.encode(Ack(n)), 1.0)
    assert resume(conn, 2.0) == [Sequence(31)]


def test_resume_replays_from_the_first_unacked() -> None:
    conn = connected(stateful=True)
    for n in range(1, 6):
        conn.push(inv(n))
    conn.take(1.0)
    conn.receive(hubjson.encode(Ack(2)), 1.0)
    conn.push(inv(6))  # queued, never sent
    conn.push_message(Ping())  # untracked, no sequence id
    assert resume(conn, 2.0) == [Sequence(3), *(Invocation("m", [n]) for n in range(3, 7)), Ping()]


def test_resume_with_nothing_unacked_names_the_next_id() -> None:
    conn = connected(stateful=True)
    conn.push(inv(1))
    conn.take(1.0)
    conn.receive(hubjson.encode(Ack(1)), 1.0)
    assert resume(conn, 2.0) == [Sequence(2)]


def test_resume_with_only_queued_records_names_the_first() -> None:
    conn = connected(stateful=True)
    conn.push(inv(1))
    conn.push(inv(2))
    assert resume(conn, 1.0) == [Sequence(1), Invocation("m", [1]), Invocation("m", [2])]


def test_untracked_messages_take_no_sequence_id() -> None:
    conn = connected(stateful=True)
    conn.push_message(Ping())
    conn.push(PING, trackable=False)
    conn.push(inv(1))
    conn.take(1.0)
    assert resume(conn, 2.0) == [Sequence(1), Invocation("m", [1])]


def test_replayed_records_are_unacked_again() -> None:
    conn = connected(stateful=True)
    conn.push(inv(1))
    conn.take(1.0)
    resume(conn, 2.0)
    assert resume(conn, 3.0) == [Sequence(1), Invocation("m", [1])]


def test_a_non_resume_stream_does_not_replay() -> None:
    conn = connected(stateful=True)
    conn.push(inv(1))
    conn.take(1.0)
    conn.detach(1, 2.0)
    conn.attach(2.0)
    assert conn.take(2.0) == ""


def test_ack_of_a_message_never_sent() -> None:
    conn = connected(stateful=True)
    conn.push(inv(1))
    conn.take(1.0)
    with pytest.raises(ProtocolError, match="Ack of a message never sent"):
        conn.receive(hubjson.encode(Ack(2)), 1.0)


def test_incoming_messages_are_acked_by_take() -> None:
    conn = connected(stateful=True)
    received = conn.receive(inv(1) + inv(2) + PING, 1.0)
    assert received.messages == [Invocation("m", [1]), Invocation("m", [2]), Ping()]
    assert conn.has_output
    conn.push(inv(10))
    assert parse(conn.take(1.0)) == [Ack(2), Invocation("m", [10])]
    assert not conn.has_output
    conn.receive(PING, 2.0)  # untracked: no new ack is due
    assert not conn.has_output


def test_duplicates_after_the_clients_sequence_are_dropped() -> None:
    conn = connected(stateful=True)
    conn.receive(inv(1) + inv(2) + inv(3), 1.0)
    conn.take(1.0)
    replay = hubjson.encode(Sequence(2)) + inv(2) + inv(3) + inv(4)
    assert conn.receive(replay, 2.0).messages == [Invocation("m", [4])]
    assert parse(conn.take(2.0)) == [Ack(4)]


def test_a_sequence_with_nothing_to_replay() -> None:
    conn = connected(stateful=True)
    conn.receive(inv(1), 1.0)
    assert conn.receive(hubjson.encode(Sequence(2)) + inv(2), 2.0).messages == [Invocation("m", [2])]


def test_a_resume_in_the_middle_of_a_replay_is_no_gap() -> None:
    """A replay cut short by a second resume leaves the count behind the last message received; the second
    resume's Sequence starts after that last message (the client had its Ack), and is no gap."""
    conn = connected(stateful=True)
    conn.receive(inv(1) + inv(2) + inv(3), 1.0)
    assert conn.receive(hubjson.encode(Sequence(1)) + inv(1), 2.0).messages == []  # a replay, cut after one
    assert conn.receive(hubjson.encode(Sequence(4)) + inv(4), 3.0).messages == [Invocation("m", [4])]


@pytest.mark.parametrize("sequence_id", [0, 3, 100])
def test_a_sequence_beyond_the_messages_sent(sequence_id: int) -> None:
    conn = connected(stateful=True)
    conn.receive(inv(1), 1.0)
    with pytest.raises(ProtocolError, match="Sequence id is beyond the messages sent"):
        conn.receive(hubjson.encode(Sequence(sequence_id)), 2.0)


# --- a client model against the server outbox, with drops anywhere ---------------------------------


class ModelClient:
    """What a client does with the server's output: follow Sequence, drop duplicates, ack."""

    def __init__(self) -> None:
        self.expected = 1
        self.last = 0
        self.delivered: list[int] = []

    def receive(self, text: str) -> None:
        for message in parse(text):
            if isinstance(message, Sequence):
                self.expected = message.sequence_id
            elif is_trackable(message):
                current, self.expected = self.expected, self.expected + 1
                if current > self.last:
                    self.last = current
                    assert isinstance(message, Invocation)
                    self.delivered.append(message.arguments[0])


actions = st.lists(st.sampled_from(["push", "take", "lose", "ack", "resume", "ping"]), max_size=60)


@settings(max_examples=300)
@given(actions)
def test_outbox_delivers_each_message_once_in_order(steps: list[str]) -> None:
    conn = connected(stateful=True)
    client = ModelClient()
    pushed = 0
    now = 1.0
    for step in steps:
        now += 1.0
        if step == "push":
            pushed += 1
            conn.push(inv(pushed))
        elif step == "ping":
            conn.push_message(Ping())
        elif step == "take":
            client.receive(conn.take(now))
        elif step == "lose":  # written to a stream that died: the client never sees it
            conn.take(now)
            conn.detach(conn.generation, now)
            conn.attach(now, resume=True)
        elif step == "ack" and client.last:
            conn.receive(hubjson.encode(Ack(client.last)), now)
        elif step == "resume":
            conn.detach(conn.generation, now)
            conn.attach(now, resume=True)
        assert client.delivered == list(range(1, len(client.delivered) + 1))
    client.receive(resume_text(conn, now + 1.0))
    assert client.delivered == list(range(1, pushed + 1))


def resume_text(conn: Connection, now: float) -> str:
    conn.detach(conn.generation, now)
    conn.attach(now, resume=True)
    return conn.take(now)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["send", "deliver", "lose", "ack"]), max_size=50))
def test_inbox_dispatches_each_message_once_in_order(steps: list[str]) -> None:
    """The client's side of a resume: Sequence(first unacked) and its unacked records, some of them twice."""
    conn = connected(stateful=True)
    sent: list[tuple[int, str]] = []  # the client's unacked (id, record)
    next_id = 1
    wire: list[str] = []  # written but not yet delivered
    dispatched: list[int] = []
    for step in steps:
        if step == "send":
            sent.append((next_id, inv(next_id)))
            wire.append(inv(next_id))
            next_id += 1
        elif step == "deliver" and wire:
            dispatched += [m.arguments[0] for m in conn.receive("".join(wire), 1.0).messages]  # type: ignore[union-attr]
            wire.clear()
        elif step == "lose":  # the stream dropped: resend Sequence and every unacked record
            first = sent[0][0] if sent else next_id
            wire = [hubjson.encode(Sequence(first)), *(r for _, r in sent)]
        elif step == "ack":
            for message in parse(conn.take(1.0)):
                if isinstance(message, Ack):
                    sent = [(i, r) for i, r in sent if i > message.sequence_id]
        assert dispatched == list(range(1, len(dispatched) + 1))
    dispatched += [m.arguments[0] for m in conn.receive("".join(wire), 1.0).messages]  # type: ignore[union-attr]
    assert dispatched == list(range(1, next_id))


# --- the MessagePack hub protocol ---------------------------------------------------------------------

MP_HANDSHAKE = hubjson.encode_handshake_request("messagepack").encode()


def mp(n: int) -> bytes:
    return hubmsgpack.encode(Invocation("m", [n]))


def test_a_messagepack_handshake_switches_the_connection_to_binary_records() -> None:
    conn = Connection(0.0, stateful=True)
    conn.attach(0.0)
    conn.push(inv(1))  # pushed before the handshake: JSON, re-encoded when the handshake picks MessagePack
    received = conn.receive(MP_HANDSHAKE + mp(2) + hubmsgpack.encode(Ping()), 0.0)
    assert received == Received([Invocation("m", [2]), Ping()], handshake=True)
    assert conn.protocol.name == "messagepack"
    # the handshake response first, even with an Ack due
    assert conn.take(0.0) == hubjson.HANDSHAKE_OK.encode() + hubmsgpack.encode(Ack(1)) + mp(1)
    conn.push_message(Invocation("m", [b"\x00"]))
    conn.close("bye")
    assert conn.take(1.0) == hubmsgpack.encode(Invocation("m", [b"\x00"])) + hubmsgpack.encode(Close("bye"))


def test_messagepack_input_split_anywhere() -> None:
    conn = Connection(0.0)
    conn.attach(0.0)
    data = MP_HANDSHAKE + mp(1) + mp(2)
    messages: list[HubMessage] = []
    for i in range(len(data)):
        messages += conn.receive(data[i:i + 1], 0.0).messages
    assert messages == [Invocation("m", [1]), Invocation("m", [2])]


def test_messagepack_pings_and_resume_use_the_binary_protocol() -> None:
    conn = Connection(0.0, stateful=True)
    conn.attach(0.0)
    conn.receive(MP_HANDSHAKE, 0.0)
    conn.take(0.0)
    conn.push(mp(1))
    conn.take(0.0)
    assert conn.tick(20.0) is None and conn.take(20.0) == hubmsgpack.PING
    conn.attach(21.0, resume=True)
    assert conn.take(21.0) == hubmsgpack.encode(Sequence(1)) + mp(1)


def test_a_text_only_stream_refuses_a_binary_handshake() -> None:
    conn = Connection(0.0)
    conn.attach(0.0, binary=False)
    with pytest.raises(ProtocolError, match="needs the Binary transfer format"):
        conn.receive(MP_HANDSHAKE, 0.0)
    assert '"error"' in conn.take(0.0)


def test_a_messagepack_connection_survives_a_snapshot() -> None:
    conn = Connection(0.0, stateful=True)
    conn.attach(0.0)
    conn.receive(MP_HANDSHAKE + mp(1)[:3], 0.0)
    conn.push(mp(2))
    conn.take(0.0)
    conn.push(mp(3))
    restored = Connection.restore(json.loads(json.dumps(conn.snapshot())), 5.0)
    assert restored.protocol.name == "messagepack"
    assert restored.receive(mp(1)[3:], 5.0).messages == [Invocation("m", [1])]
    restored.attach(5.0, resume=True)
    assert restored.take(5.0) == hubmsgpack.encode(Ack(1)) + hubmsgpack.encode(Sequence(1)) + mp(2) + mp(3)
