"""The client's sans-IO session, piped into the server's ``Connection`` with no socket and no event loop.

Like h11's ConnectionPair: what one side writes is what the other reads, and the clock is a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from gateway.protocol import hubjson, hubmsgpack
from gateway.protocol.connection import Connection, Limits
from gateway.protocol.errors import ProtocolError, StateError
from gateway.protocol.hubprotocols import MESSAGEPACK
from gateway.protocol.ledger import Ledger
from gateway.protocol.messages import Ack, Close, Completion, HubMessage, Invocation, Sequence
from gateway.protocol.session import CLIENT_TRANSITIONS, ClientEvent, ClientSession, ClientState


@dataclass
class Pair:
    """A client session and a server connection joined by a pipe that the test may cut."""

    stateful: bool = False
    now: float = 0.0
    client: ClientSession = field(default_factory=ClientSession)
    server: Connection = field(init=False)
    at_server: list[HubMessage] = field(default_factory=list)
    at_client: list[HubMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = Connection(self.now, stateful=self.stateful, limits=Limits())

    def to_server(self, text: str) -> None:
        if text:
            self.at_server += self.server.receive(text, self.now).messages

    def to_client(self) -> None:
        text = self.server.take(self.now)
        if text:
            self.at_client += self.client.receive(text, self.now).messages

    def connect(self) -> None:
        self.client.start()
        self.server.attach(self.now)
        self.to_server(self.client.handshake(self.now, stateful=self.stateful))
        self.to_client()
        assert self.client.state is ClientState.CONNECTED

    def resume(self) -> None:
        assert self.client.dropped()
        self.server.detach(self.server.generation, self.now)
        self.server.attach(self.now, resume=True)
        self.to_server(self.client.resumed(self.now))
        self.to_client()


@pytest.mark.parametrize("state", list(ClientState))
@pytest.mark.parametrize("event", list(ClientEvent))
def test_transition_table(state: ClientState, event: ClientEvent) -> None:
    session = ClientSession()
    session.state = state
    target = CLIENT_TRANSITIONS.get((state, event))
    if target is None:
        with pytest.raises(StateError, match=f"can't handle event {event.value} in state {state.value}"):
            session._fire(event)
    else:
        session._fire(event)
        assert session.state is target


def test_handshake_confirmed_by_the_servers_response() -> None:
    pair = Pair()
    pair.client.start()
    pair.server.attach(0.0)
    pair.to_server(pair.client.handshake(0.0, stateful=False))
    assert pair.client.state is ClientState.CONNECTING  # nothing came back yet
    incoming = pair.client.receive(pair.server.take(0.0), 0.0)
    assert incoming.handshake is not None and incoming.handshake.error is None
    assert pair.client.state is ClientState.CONNECTED and pair.server.handshaken


def test_a_refused_handshake_leaves_the_session_to_abandon() -> None:
    session = ClientSession()
    session.start()
    session.handshake(0.0, stateful=False)
    incoming = session.receive(hubjson.encode_handshake_response("no such protocol"), 0.0)
    assert incoming.handshake is not None and incoming.handshake.error == "no such protocol"
    assert session.state is ClientState.CONNECTING
    session.abandon()
    assert session.state is ClientState.DISCONNECTED
    session.start()  # the next transport
    assert session.state is ClientState.CONNECTING


def test_invocation_and_its_completion() -> None:
    pair = Pair()
    pair.connect()
    invocation_id, text = pair.client.invocation("Echo", ["hi"], 1.0)
    pair.to_server(text)
    assert pair.at_server == [Invocation("Echo", ["hi"], invocation_id)]
    pair.server.push_message(Completion(invocation_id, "hi", has_result=True))
    pair.server.push_message(Invocation("note", [1]))
    pair.to_client()
    assert pair.at_client == [Completion(invocation_id, "hi", has_result=True), Invocation("note", [1])]


def test_invocation_ids_are_distinct() -> None:
    pair = Pair()
    pair.connect()
    ids = {pair.client.invocation("Echo", [n], 0.0)[0] for n in range(5)}
    assert len(ids) == 5


def test_server_pings_are_counted_not_dispatched() -> None:
    pair = Pair()
    pair.connect()
    pair.now = 15.0
    assert pair.server.tick(pair.now) is None
    pair.to_client()
    assert pair.client.pings == 1 and pair.at_client == []


def test_a_close_message_is_dispatched_and_finish_happens_once() -> None:
    pair = Pair()
    pair.connect()
    pair.server.close("shutting down")
    pair.to_client()
    assert pair.at_client == [Close("shutting down")]
    assert pair.client.finish("shutting down") is True
    assert pair.client.finish(None) is False
    assert pair.client.close_error == "shutting down" and pair.client.state is ClientState.CLOSED


def test_writing_after_the_close_is_refused() -> None:
    pair = Pair()
    pair.connect()
    pair.client.close()
    with pytest.raises(ConnectionError, match="closing"):
        pair.client.message("Echo", [1], 0.0)


def test_a_transport_message_must_end_on_a_record() -> None:
    pair = Pair()
    pair.connect()
    with pytest.raises(ProtocolError, match="ended inside a record"):
        pair.client.receive('{"type":6}\x1e{"type":', 0.0)
    assert pair.client.receive(hubjson.PING, 0.0).messages == []  # the reader starts afresh


def test_keepalive_ping_and_server_timeout_as_functions_of_now() -> None:
    pair = Pair()
    pair.connect()
    session = pair.client
    assert session.deadline() == 15.0
    assert session.tick(14.9) == ("", None)
    text, gone = session.tick(15.0)
    assert text == hubjson.PING and gone is None
    pair.to_server(text)
    assert session.tick(20.0) == ("", None)  # the ping counts as a write
    assert session.deadline() == 30.0
    text, gone = session.tick(30.0)
    assert gone == "nothing from the server for 30.0 s"


def test_receiving_defers_the_server_timeout() -> None:
    pair = Pair()
    pair.connect()
    pair.now = 25.0
    pair.client.receive(hubjson.PING, pair.now)
    assert pair.client.tick(31.0)[1] is None
    assert pair.client.tick(55.0)[1] is not None


def test_no_deadline_unless_connected() -> None:
    session = ClientSession()
    assert session.deadline() == math.inf and session.tick(100.0) == ("", None)


def test_stateful_acks_are_sent_after_the_ack_interval_and_release_the_server() -> None:
    pair = Pair(stateful=True)
    pair.connect()
    for n in range(3):
        pair.server.push_message(Invocation("tick", [n]))
    pair.to_client()
    assert pair.server._unacked_bytes > 0
    assert pair.client.deadline() == 1.0
    assert pair.client.tick(0.5) == ("", None)
    text, _ = pair.client.tick(1.0)
    assert text == hubjson.encode(Ack(3))
    pair.to_server(text)
    assert pair.server._unacked_bytes == 0


def test_a_drop_without_stateful_reconnect_is_the_end() -> None:
    pair = Pair()
    pair.connect()
    assert pair.client.dropped() is False
    assert pair.client.state is ClientState.CONNECTED  # the driver finishes it


def test_resume_loses_and_duplicates_nothing_in_either_direction() -> None:
    pair = Pair(stateful=True)
    pair.connect()
    _, first = pair.client.invocation("Send", [1], 0.0)
    pair.to_server(first)
    _, lost = pair.client.invocation("Send", [2], 0.0)  # written, never arrives
    for n in (1, 2, 3):
        pair.server.push_message(Invocation("tick", [n]))
    pair.to_client()
    pair.server.push_message(Invocation("tick", [4]))
    pair.server.take(0.0)  # sent on the stream that breaks: lost on the way
    assert pair.client.dropped()
    _, during = pair.client.invocation("Send", [3], 0.0)
    assert during == ""  # recorded only: the replay carries it
    pair.server.detach(pair.server.generation, 0.0)
    pair.server.attach(0.0, resume=True)
    pair.to_server(pair.client.resumed(0.0))
    pair.to_client()
    assert [m.arguments[0] for m in pair.at_server if isinstance(m, Invocation)] == [1, 2, 3]
    assert [m.arguments[0] for m in pair.at_client if isinstance(m, Invocation)] == [1, 2, 3, 4]
    assert pair.client.state is ClientState.CONNECTED
    assert pair.client.ledger is not None and pair.client.ledger.duplicates == 3  # ticks 1-3 came again


def test_acks_after_a_resume_stop_the_replays() -> None:
    pair = Pair(stateful=True)
    pair.connect()
    pair.to_server(pair.client.message("Send", [1], 0.0))
    pair.server.push_message(Invocation("tick", [1]))
    pair.to_client()
    pair.to_server(pair.client.tick(1.0)[0])  # the client's ack of tick 1
    pair.to_client()  # the server's ack of Send 1
    pair.resume()
    assert pair.at_server == [Invocation("Send", [1])] and pair.at_client == [Invocation("tick", [1])]
    assert pair.client.ledger is not None and pair.client.ledger.duplicates == 0


def test_resumed_starts_with_the_sequence_of_the_first_unacked() -> None:
    session = ClientSession()
    session.start()
    session.handshake(0.0, stateful=True)
    session.receive(hubjson.HANDSHAKE_OK, 0.0)
    session.message("a", [], 0.0)
    session.message("b", [], 0.0)
    session.receive(hubjson.encode(Ack(1)), 0.0)
    assert session.dropped()
    replay = session.resumed(0.0)
    assert replay == hubjson.encode(Sequence(2)) + hubjson.encode(Invocation("b", []))


def test_ledger_refuses_acks_and_sequences_beyond_what_was_exchanged() -> None:
    ledger = Ledger()
    with pytest.raises(ProtocolError, match="Ack of a message never sent"):
        ledger.accept(Ack(1))
    with pytest.raises(ProtocolError, match="Sequence id is beyond"):
        ledger.accept(Sequence(2))
    ledger.sent(ledger.number(), "x\x1e")
    assert ledger.accept(Ack(1)) is False and ledger.unacked == [] and ledger.unacked_bytes == 0


def test_raw_trackable_records_are_numbered_as_the_server_counts_them() -> None:
    pair = Pair(stateful=True)
    pair.connect()
    ledger = pair.client.ledger
    assert ledger is not None
    assert pair.client.raw('{"type":42}' + hubjson.RS, pair.now) == '{"type":42}' + hubjson.RS
    assert ledger.next_out == 1  # a record the server cannot parse is not counted: it closes the connection
    text = hubjson.encode(Invocation("Raw", [1])) + hubjson.PING
    assert pair.client.raw(text, pair.now) == text
    assert ledger.next_out == 2  # the invocation, not the ping
    pair.to_server(text)
    pair.to_client()  # the server's Ack of the raw invocation names a message the client's ledger knows
    assert ledger.unacked == [] and pair.client.state is ClientState.CONNECTED


def test_a_messagepack_session_reads_the_handshake_response_and_the_frames_behind_it() -> None:
    session = ClientSession(protocol=MESSAGEPACK)
    session.start()
    assert session.handshake(0.0, stateful=True) == '{"protocol":"messagepack","version":1}' + hubjson.RS
    frames = hubmsgpack.encode(Invocation("m", [b"\x01"])) + hubmsgpack.PING
    incoming = session.receive(hubjson.HANDSHAKE_OK.encode() + frames, 0.0)
    assert incoming.handshake is not None and incoming.handshake.error is None
    assert incoming.messages == [Invocation("m", [b"\x01"])] and session.pings == 1
    _, record = session.invocation("Echo", [b"\x02"], 0.0)
    assert record == hubmsgpack.encode(Invocation("Echo", [b"\x02"], "1"))
    assert session.tick(1.0)[0] == hubmsgpack.encode(Ack(1))
    assert session.close_record() == hubmsgpack.encode(Close())
