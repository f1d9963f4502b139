"""HTTP input from clients that do not play along, against a real uvicorn server: bodies that never finish, for
tokens the server does not know; negotiates never followed by a connection; frames asked to post anywhere;
X-Forwarded-For headers that try to choose the rate limiter's key.

Memory is read from /proc of a server in its own process; the event loop's health is a bystander connection's echo
round trip, which stays under 100 ms while each attack runs.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from live import (
    HANDSHAKE,
    Bystander,
    HeldPost,
    Live,
    RawStream,
    RawWebSocket,
    flood_negotiates,
    negotiate,
    request,
    rss_bytes,
    serve_gateways,
    serve_process,
    wait_until,
)

from gateway import Gateway, Settings
from gateway.demo.hubs import EchoHub
from gateway.server.limits import BadTokenLimiter

STALL = 0.1  # a bystander's echo round trip stays under this while an attack runs
PENDING = 1.0  # the pending lifetime of the in-thread gateways (the default is 5 s)
MiB = 1 << 20


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateways = {
        "/hub": Gateway(EchoHub, name="hub"),
        "/limited": Gateway(EchoHub, name="limited"),
        "/pending": Gateway(EchoHub, name="pending", settings=Settings(
            max_connections=20, pending_timeout=PENDING, max_pending=60, max_pending_per_client=30)),
        "/open": Gateway(EchoHub, name="open", allowed_origins=["*"]),
        "/proxied": Gateway(EchoHub, name="proxied", trusted_proxies=["127.0.0.1", "10.0.0.0/8"]),
    }
    gateways["/limited"].bad_tokens = BadTokenLimiter(limit=3, window=60.0)
    with serve_gateways(gateways) as server:
        yield server


def _unknown() -> str:
    return secrets.token_urlsafe(24)


# --- 3. bodies that never finish, for tokens the server does not know ---------------------------------------------


def test_a_post_to_an_unknown_token_is_answered_before_its_body_and_its_socket_closed(live: Live) -> None:
    held = HeldPost(live.port, f"/hub?id={_unknown()}", length=MiB, first=b"x" * 1000)
    started = time.monotonic()
    answer, closed = held.response(timeout=2.0)
    held.close()
    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
    assert time.monotonic() - started < 1.0
    assert b"connection: close" in answer.lower() and b'"error": "no connection with this id"' in answer
    assert closed  # the rest of the body is never read: the socket is gone, and whatever it held with it


def test_a_client_over_the_bad_token_limit_gets_429_before_its_body(live: Live) -> None:
    source = "127.0.0.21"
    for _ in range(3):
        assert request(live.port, "GET", f"/limited?id={_unknown()}", source=source).status == 404
    held = HeldPost(live.port, f"/limited?id={_unknown()}", length=MiB, first=b"x" * 10, source=source)
    answer, closed = held.response(timeout=2.0)
    held.close()
    assert answer.startswith(b"HTTP/1.1 429") and b"retry-after:" in answer.lower(), answer[:200]
    assert closed


def test_held_bodies_for_unknown_tokens_cost_no_memory_and_stall_nobody() -> None:
    """200 POSTs announce 1 MiB each, send 256 KiB and hold: 50 MiB offered. All are answered within 2 s, the
    server's RSS grows by under a tenth of what was offered, and the bystander's echo stays under 100 ms."""
    count, first = 200, b"x" * (256 * 1024)
    with serve_process("hardening_app:app") as (port, pid), Bystander(port) as bystander:
        time.sleep(0.3)
        before = rss_bytes(pid)
        held = [HeldPost(port, f"/hub?id={_unknown()}", MiB, first, source=f"127.0.1.{1 + i % 200}", timeout=2.0)
                for i in range(count)]
        deadline = time.monotonic() + 2.0
        answers = [h.response(max(0.05, deadline - time.monotonic())) for h in held]
        peak = rss_bytes(pid)
        for h in held:
            h.close()
        time.sleep(0.3)
    offered = count * len(first)
    statuses = Counter(a[:12].decode("latin-1") for a, _ in answers)
    print(f"\nheld bodies: {count} x {len(first) // 1024} KiB offered; answers {dict(statuses)}; "
          f"RSS {before / MiB:.1f} -> {peak / MiB:.1f} MiB; bystander worst {bystander.worst * 1000:.1f} ms")
    assert statuses == {"HTTP/1.1 404": count}
    assert all(closed for _, closed in answers)
    assert peak - before < offered / 10
    assert bystander.failures == 0 and bystander.worst < STALL


# --- 4. bare negotiates --------------------------------------------------------------------------------------------


def test_a_flood_of_bare_negotiates_does_not_lock_real_clients_out(live: Live) -> None:
    flood = [request(live.port, "POST", "/pending/negotiate?negotiateVersion=1", source="127.0.0.31")
             for _ in range(40)]
    assert [r.status for r in flood] == [200] * 30 + [429] * 10  # its own cap, per client, past max_connections
    assert int(flood[-1].headers["retry-after"]) >= 1 and "never connected" in (flood[-1].error or "")
    token = negotiate(live.port, "/pending", source="127.0.0.32")["connectionToken"]
    ws = RawWebSocket(live.port, f"/pending?id={token}", source="127.0.0.32")
    ws.send_text(HANDSHAKE)
    assert ws.records(lambda r: bool(r)) == ["{}"]  # a real client, which connects at once, gets in
    time.sleep(PENDING + 0.3)
    gateway = live.gateways["/pending"]
    assert wait_until(lambda: len(gateway.registry) == 1)  # the flood expired; the real client lives on
    assert request(live.port, "GET", f"/pending?id={flood[0].json()['connectionToken']}").status == 404
    ws.close()


def test_pending_connections_have_a_global_cap_too(live: Live) -> None:
    sources = ("127.0.0.41", "127.0.0.42", "127.0.0.43")
    replies = [request(live.port, "POST", "/pending/negotiate?negotiateVersion=1", source=source)
               for source in sources for _ in range(20)]
    statuses = [r.status for r in replies]
    assert statuses == [200] * 60, statuses
    refused = request(live.port, "POST", "/pending/negotiate?negotiateVersion=1", source="127.0.0.44")
    assert refused.status == 503 and int(refused.headers["retry-after"]) >= 1
    assert refused.error == "too many connections that never connected"
    gateway = live.gateways["/pending"]
    assert wait_until(lambda: len(gateway.pending) == 0, timeout=PENDING + 2)
    assert request(live.port, "POST", "/pending/negotiate?negotiateVersion=1", source="127.0.0.44").status == 200


def test_a_connection_that_a_stream_came_for_is_pending_no_more(live: Live) -> None:
    negotiated = negotiate(live.port, "/pending", source="127.0.0.51")
    token = negotiated["connectionToken"]
    assert negotiated["connectionId"] in live.gateways["/pending"].pending
    assert request(live.port, "GET", f"/pending?id={token}").status == 200  # a first long poll: handshake pending
    assert negotiated["connectionId"] not in live.gateways["/pending"].pending
    time.sleep(PENDING + 0.3)
    reply = request(live.port, "POST", f"/pending?id={token}", body=HANDSHAKE.encode())
    assert reply.status == 200, reply


def _burst(port: int, pid: int, sources: list[str], each: int) -> tuple[Counter[int], int]:
    """One burst of negotiates; the statuses, and the server's highest RSS while it ran (sampled every 50 ms)."""
    samples = [rss_bytes(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append(rss_bytes(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:  # its own process: no GIL shared with the
            statuses = pool.apply(flood_negotiates, (port, sources, each))  # bystander's thread
    finally:
        done.set()
        sampler.join()
    return statuses, max(samples)


def test_bursts_of_bare_negotiates_cost_bounded_memory_that_is_given_back_or_reused() -> None:
    """Two bursts of 20,000 negotiates from 20 addresses, never connected: at most 2,000 pending at once (the
    default cap; 503 past it), under 4 KiB each at the peak; all expire within their lifetime; the second burst
    reuses the memory the first left (RSS grows by under 1 MiB more), and the bystander's echo stays under 100 ms."""
    lifetime, sources, each = 3.0, [f"127.0.2.{i}" for i in range(1, 21)], 1000
    env = {"GATEWAY_TEST_OPTIONS": json.dumps({"pending_timeout": lifetime})}
    with serve_process("hardening_app:app", env=env) as (port, pid), Bystander(port) as bystander:
        flood_negotiates(port, ["127.0.3.1"], 200)  # warm up: the code paths' own allocations
        time.sleep(lifetime + 1)
        before = rss_bytes(pid)
        first, peak1 = _burst(port, pid, sources, each)
        time.sleep(lifetime + 2)
        after1 = rss_bytes(pid)
        second, peak2 = _burst(port, pid, sources, each)
        time.sleep(lifetime + 2)
        after2 = rss_bytes(pid)
        token = negotiate(port)["connectionToken"]  # the last of them expired: a fresh token is the only one
        assert request(port, "GET", f"/hub?id={token}").status == 200
    print(f"\nbare negotiates, 2 bursts: {dict(first)}, {dict(second)}; RSS MiB: before {before / MiB:.1f}, peak "
          f"{peak1 / MiB:.1f}, after {after1 / MiB:.1f}, peak {peak2 / MiB:.1f}, after {after2 / MiB:.1f}; "
          f"bystander worst {bystander.worst * 1000:.1f} ms over {len(bystander.latencies)} echoes")
    for statuses in (first, second):
        assert set(statuses) <= {200, 503}  # every negotiate answered: admitted, or 503 past the cap
    assert peak1 - before < 2000 * 4096
    assert peak2 - peak1 < MiB and after2 - after1 < MiB
    assert bystander.failures == 0 and bystander.worst < STALL


# --- 5. ForeverFrame's target origin --------------------------------------------------------------------------------

_TARGET = re.compile(rb"parent\.postMessage\(\{gw:\"f\",d:d\},\"([^\"]*)\"\)")


@pytest.mark.parametrize("origin", [
    "*", "null", "https://app.example/", "https://app.example/page", "javascript:alert(1)//", "file://",
    "https://user@app.example", "https://*.example", "data:text/html,x", "https://app.example:99999",
])
def test_a_frame_targets_no_wildcard_or_null_even_when_any_origin_is_allowed(live: Live, origin: str) -> None:
    token = negotiate(live.port, "/open")["connectionToken"]
    query = f"/open?id={token}&transport=ForeverFrame&frame=f&origin={origin.replace('&', '%26')}"
    frame = RawStream(live.port, query)
    assert frame.status == 403
    assert "scheme://host[:port]" in (frame.error or "")
    frame.close()


def test_a_frame_for_a_real_origin_posts_to_that_origin_alone(live: Live) -> None:
    token = negotiate(live.port, "/open")["connectionToken"]
    frame = RawStream(live.port, f"/open?id={token}&transport=ForeverFrame&frame=f&origin=https://evil.example:8443")
    assert frame.status == 200
    match = _TARGET.search(frame.read_until(b"-->"))
    assert match is not None and match.group(1) == b"https://evil.example:8443"
    frame.close()


# --- 6. forwarded client addresses ----------------------------------------------------------------------------------


def _guess(live: Live, path: str, forwarded_for: str) -> int:
    return request(live.port, "GET", f"{path}?id={_unknown()}", headers={"X-Forwarded-For": forwarded_for},
                   source="127.0.0.1").status


def test_x_forwarded_for_from_a_local_process_does_not_choose_the_limiter_key(live: Live) -> None:
    """uvicorn trusts 127.0.0.1's X-Forwarded-For by default; the gateway does not, unless told."""
    from gateway.server.peers import FORWARDED
    gateway = live.gateways["/hub"]
    gateway.bad_tokens = BadTokenLimiter(limit=5, window=60.0)
    statuses = [_guess(live, "/hub", f"203.0.113.{i}:4000") for i in range(1, 8)]
    assert statuses == [404] * 5 + [429] * 2  # one budget: the peer's, whatever the header claims
    assert FORWARDED in gateway.bad_tokens._hits
    assert request(live.port, "GET", f"/hub?id={_unknown()}", source="127.0.0.61").status == 404  # others unharmed


def test_with_trusted_proxies_named_the_forwarded_client_is_the_key(live: Live) -> None:
    gateway = live.gateways["/proxied"]
    gateway.bad_tokens = BadTokenLimiter(limit=3, window=60.0)
    assert [_guess(live, "/proxied", f"198.51.100.{i}") for i in range(1, 6)] == [404] * 5  # five clients
    assert [_guess(live, "/proxied", "198.51.100.9, 10.0.0.1") for _ in range(4)] == [404] * 3 + [429]
    assert "198.51.100.9" in gateway.bad_tokens._hits
