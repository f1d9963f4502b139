"""Settings: one documented object whose README table matches the code; keep-alives at their interval."""

from __future__ import annotations

import ast
import dataclasses
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from live import HANDSHAKE, Live, RawWebSocket, negotiate, serve_gateways
from sources import parse

from gateway import Gateway, Limits, Settings
from gateway.demo.hubs import EchoHub
from gateway.protocol import Connection, hubjson
from gateway.protocol.hubjson import HANDSHAKE_OK, PING
from gateway.server.connection import ServerConnection
from gateway.server.deadlines import Deadlines

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| `(\w+)` \| `([\d_.]+)`[^|]*\| (.+) \|$")


def readme_table() -> dict[str, tuple[str, str]]:
    """The README's settings table: name -> (default as written, meaning)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [ROW.match(line) for line in section.splitlines() if line.startswith("| `")]
    assert all(rows), "a settings row is not `| `name` | `default` unit | meaning |`"
    return {m[1]: (m[2], m[3]) for m in rows if m}


def field_docs() -> dict[str, str]:
    """The one-line docstring under each field of Settings."""
    tree = parse(ROOT / "gateway" / "server" / "settings.py")
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings").body
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr):
            docs[node.target.id] = str(after.value.value)  # type: ignore[attr-defined]
    return docs


def test_the_readme_table_lists_every_setting_with_its_default() -> None:
    table = readme_table()
    fields = dataclasses.fields(Settings)
    assert list(table) == [f.name for f in fields], "the README's settings table and Settings differ in names"
    for field in fields:
        written = table[field.name][0]
        assert type(field.default)(written.replace("_", "")) == field.default, f"README: {field.name} = {written}"
        assert ("." in written) == isinstance(field.default, float), f"README: write {field.name} as its type"


def test_every_setting_has_a_one_line_docstring() -> None:
    docs = field_docs()
    assert set(docs) == {f.name for f in dataclasses.fields(Settings)}
    assert all(doc and "\n" not in doc for doc in docs.values())


def test_the_core_limits_come_from_the_settings_with_the_same_defaults() -> None:
    settings = Settings()
    for field in dataclasses.fields(Limits):
        assert getattr(Limits(), field.name) == getattr(settings, field.name), field.name
    custom = Settings(keepalive_interval=2.0, max_buffer=10)
    assert custom.limits == Limits(keepalive_interval=2.0, max_buffer=10)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Settings)])
def test_a_setting_that_is_not_positive_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings(**{name: 0})


# --- keep-alive at its interval, with an injected clock ---------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wired(clock: Clock, deadlines: Deadlines, limits: Limits) -> ServerConnection:
    """A handshaken connection on a persistent stream, woken by ``deadlines``; its greeting sent at t=0."""

    async def dispatch(conn: ServerConnection, received: object) -> None: ...

    core = Connection(clock.now, limits=limits)
    conn = ServerConnection("c1", "t1", core, clock, dispatch, lambda c: None, None, deadlines.schedule)
    conn.reschedule()
    core.attach(clock.now, pings=True)
    conn.reschedule()
    core.receive(HANDSHAKE, clock.now)
    conn.reschedule()
    assert core.take(clock.now) == HANDSHAKE_OK
    return conn


def test_the_ping_is_queued_at_the_keepalive_interval_not_a_tick_later() -> None:
    clock, deadlines = Clock(), Deadlines(Clock())
    conn = wired(clock, deadlines, Limits(keepalive_interval=14.5, client_timeout=1e9))
    pings = []
    for step in range(1, 4000):  # 40 s in 10 ms steps; the deadlines run wherever the clock is
        clock.now = step / 100
        deadlines.run(clock.now)
        if conn.core.has_output:
            pings.append(clock.now)
            assert conn.core.take(clock.now) == PING
    assert pings == [14.5, 29.0]


def test_the_next_deadline_is_the_ping_due_after_the_last_send() -> None:
    clock, deadlines = Clock(), Deadlines(Clock())
    conn = wired(clock, deadlines, Limits(keepalive_interval=15.0, client_timeout=30.0))
    assert conn.due == 15.0
    conn.core.push(hubjson.encode(hubjson.parse_message('{"type":1,"target":"m","arguments":[]}')))
    conn.core.take(7.5)  # a send moves the ping later: the entry at 15 ticks nothing and moves to 22.5
    deadlines.run(15.0)
    assert not conn.core.has_output and conn.due == 22.5
    deadlines.run(22.5)
    assert conn.core.take(22.5) == PING


@given(st.floats(0.0, 1e6), st.floats(0.01, 100.0), st.floats(0.01, 100.0))
def test_a_due_time_from_next_due_is_acted_on_by_tick_to_the_last_bit(start: float, keepalive: float,
                                                                       timeout: float) -> None:
    core = Connection(start, limits=Limits(keepalive_interval=keepalive, client_timeout=timeout))
    core.attach(start, pings=True)
    core.receive(HANDSHAKE, start)
    core.take(start)
    due = core.next_due(start)
    assert due is not None
    closed = core.tick(due) is not None
    assert closed or core.has_output, "tick did nothing at the time next_due gave: the timer would spin"


def test_after_any_tick_the_next_deadline_is_later_than_now() -> None:
    limits = Limits(keepalive_interval=1.0, client_timeout=5.0, handshake_timeout=3.0, disconnect_timeout=2.0)
    for attached, handshake, pending in [(a, h, p) for a in (0, 1) for h in (0, 1) for p in (0, 1)]:
        core = Connection(0.0, limits=limits)
        if attached:
            core.attach(0.0, pings=True)
        if handshake:
            core.receive(HANDSHAKE, 0.0)
            core.take(0.0)
        if pending:
            core.push("x" + hubjson.RS)
        for now in (0.5, 1.0, 1.5, 2.5):
            if core.tick(now) is not None:
                break
            due = core.next_due(now)
            assert due is None or due > now, (attached, handshake, pending, now)


# --- live: the gap between pings ------------------------------------------------------------------

KEEPALIVE = 0.4


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    settings = Settings(keepalive_interval=KEEPALIVE, client_timeout=30.0)
    with serve_gateways({"/hub": Gateway(EchoHub, name="hub", settings=settings)}) as server:
        yield server


def test_pings_come_at_the_keepalive_interval_on_a_live_websocket(live: Live) -> None:
    token = negotiate(live.port, "/hub")["connectionToken"]
    ws = RawWebSocket(live.port, f"/hub?id={token}")
    ws.send_text(HANDSHAKE)
    assert ws.records(lambda r: bool(r)) == ["{}"]
    arrivals = [time.monotonic()]
    for _ in range(5):
        assert ws.records(lambda r: bool(r), timeout=3) == [PING.rstrip(hubjson.RS)]
        arrivals.append(time.monotonic())
    ws.close()
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    # a ping a whole sweep late (the old one-second ticker) would show gaps of 1 s
    assert all(KEEPALIVE - 0.05 <= gap < KEEPALIVE + 0.25 for gap in gaps), gaps
