"""The demo is a public surface too: every endpoint and hub method bounds its input (body sizes, counts, steps,
step times), answers 400/408/413/503 with a JSON error past them, and a maximal call keeps a bystander's echo
under 100 ms. The demo runs on a real uvicorn in a process of its own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from live import HANDSHAKE, Bystander, HeldPost, RawWebSocket, negotiate, request, serve_process, wait_until

from gateway.protocol import hubjson
from gateway.protocol.messages import Invocation

STALL = 0.1


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_process("demo_app:app") as (port, _):
        yield port


def _post_job(port: int, body: Any) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = request(port, "POST", "/jobs", body=data, headers={"Content-Type": "application/json"})
    return reply.status, reply.json()


@pytest.mark.parametrize(("body", "error"), [
    ({"steps": 201}, "steps must be an integer from 1 to 200"),
    ({"steps": 10, "step_ms": 10_001}, "step_ms must be an integer from 0 to 10000"),
    ({"steps": 200, "step_ms": 10_000}, "steps x step_ms must be at most 600000 ms"),
    ({"steps": 10, "fail_at": 201}, "fail_at must be an integer from 1 to 200"),
    ({"steps": 1e9}, "steps must be an integer"),
    (b"[" * 4000, "the body is not JSON"),
    (b"{", "the body is not JSON"),
    ([1, 2], "the body must be a JSON object"),
])
def test_post_jobs_refuses_what_is_out_of_bounds_with_400(port: int, body: Any, error: str) -> None:
    status, answer = _post_job(port, body)
    assert status == 400 and answer["error"].startswith(error), answer


def test_post_jobs_refuses_a_body_over_4_kib_with_413(port: int) -> None:
    status, answer = _post_job(port, {"steps": 1, "pad": "x" * 4096})
    assert status == 413 and answer["error"] == "the body exceeds 4096 bytes"


def test_post_jobs_answers_a_held_body_with_408_within_the_body_timeout(port: int) -> None:
    held = HeldPost(port, "/jobs", length=1000, first=b'{"steps":')
    started = time.monotonic()
    answer, closed = held.response(timeout=3.0)
    held.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"took too long" in answer, answer[:200]
    assert time.monotonic() - started < 2.0 and closed


def test_post_jobs_is_503_when_too_many_jobs_wait(port: int) -> None:
    blocker = _post_job(port, {"steps": 1, "step_ms": 2000})[1]["id"]  # holds the one worker
    time.sleep(0.2)
    ids = [_post_job(port, {"steps": 1, "step_ms": 0})[1]["id"] for _ in range(100)]
    status, answer = _post_job(port, {"steps": 1, "step_ms": 0})
    for job_id in [blocker, *ids]:
        request(port, "POST", f"/jobs/{job_id}/cancel")
    assert status == 503 and "too many jobs" in answer["error"]
    assert wait_until(lambda: request(port, "GET", f"/jobs/{ids[-1]}").json()["state"] == "Cancelled", 10.0)


class Hub:
    """A raw WebSocket hub connection that invokes methods and reads their completions."""

    def __init__(self, port: int, path: str) -> None:
        token = negotiate(port, path)["connectionToken"]
        self.ws = RawWebSocket(port, f"{path}?id={token}", timeout=10.0)
        self.ws.send_text(HANDSHAKE)
        assert self.ws.records(lambda r: bool(r)) == ["{}"]
        self.count = 0

    def invoke(self, method: str, *args: Any, timeout: float = 10.0) -> dict[str, Any]:
        self.count += 1
        tag = f"i{self.count}"
        self.ws.send_text(hubjson.encode(Invocation(method, list(args), tag)))
        records = self.ws.records(lambda r: any(f'"invocationId":"{tag}"' in x for x in r), timeout)
        done = [json.loads(r) for r in records if f'"invocationId":"{tag}"' in r]
        assert done, records[-3:]
        result: dict[str, Any] = done[0]
        return result


@pytest.mark.parametrize(("method", "args", "error"), [
    ("PushGroup", ["g", 1001], "count must be an integer from 1 to 1000"),
    ("PushGroup", ["g", "5"], "count must be an integer"),
    ("PushGroup", ["x" * 65, 1], "a group is a string of 1 to 64 characters"),
    ("Join", ["x" * 65], "a group is a string of 1 to 64 characters"),
    ("Join", [["a"]], "a group is a string"),
])
def test_echo_hub_methods_refuse_what_is_out_of_bounds(port: int, method: str, args: list[Any], error: str) -> None:
    hub = Hub(port, "/hubs/echo")
    assert error in hub.invoke(method, *args).get("error", "")
    hub.ws.close()


def test_chat_keeps_the_history_of_a_bounded_number_of_rooms(port: int) -> None:
    hub = Hub(port, "/hubs/chat")
    assert "a room is a string" in hub.invoke("Join", "r" * 65).get("error", "")
    hub.invoke("SendMessage", "room-0", "me", "first")
    assert [m["text"] for m in hub.invoke("Join", "room-0")["result"]] == ["first"]
    for i in range(1, 101):
        hub.invoke("SendMessage", f"room-{i}", "me", "x")
    assert hub.invoke("Join", "room-0")["result"] == []  # the least recently used room was forgotten
    hub.ws.close()


def test_maximal_demo_calls_keep_a_bystanders_echo_under_100_ms(port: int) -> None:
    members = [Hub(port, "/hubs/echo") for _ in range(20)]
    for member in members:
        assert "error" not in member.invoke("Join", "crowd")
    pusher = members[0]
    with Bystander(port, "/hubs/echo") as bystander:
        assert "error" in pusher.invoke("PushGroup", "crowd", 10**6, timeout=5.0)  # 20 million sends: refused
        for _ in range(3):
            assert pusher.invoke("PushGroup", "crowd", 1000, timeout=30.0)["result"] == 1000  # 20,000 sends
        for _ in range(3):
            assert _post_job(port, {"steps": 200, "step_ms": 0})[0] == 202
        time.sleep(1.0)
    for member in members:
        member.ws.close()
    print(f"\nbystander: worst {bystander.worst * 1000:.1f} ms over {len(bystander.latencies)} echoes")
    assert bystander.failures == 0 and bystander.worst < STALL


def test_gateway_demo_trusts_no_forwarded_header_unless_told() -> None:
    from gateway.cli import _parser, proxy_options

    assert proxy_options(_parser().parse_args(["demo"])) == {"proxy_headers": False}
    args = _parser().parse_args(["demo", "--trusted-proxy", "10.0.0.1", "--trusted-proxy", "192.168.0.0/16"])
    assert proxy_options(args) == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.1,192.168.0.0/16"}
