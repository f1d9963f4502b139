"""One origin allowlist governs CORS, the ForeverFrame ``targetOrigin`` and the WebSocket ``Origin`` check.

Credentials (``Access-Control-Allow-Credentials``) go only to an origin named in the list, never with a wildcard.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from live import HANDSHAKE, Live, RawStream, RawWebSocket, negotiate, request, serve_gateways, sse

from gateway import Gateway
from gateway.demo.hubs import EchoHub

APP = "https://app.example"
EVIL = "https://evil.example"
# Near misses of APP: the allowlist is an exact match on scheme, host and port.
LOOKALIKES = [
    "http://app.example", "https://app.example:8443", "https://app.example.evil.example", "https://evilapp.example",
    "https://app.exampl", "https://app.example/", "null",
]


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateways = {
        "/strict": Gateway(EchoHub, name="strict", allowed_origins=[APP]),
        "/open": Gateway(EchoHub, name="open", allowed_origins=["*"]),
        "/mixed": Gateway(EchoHub, name="mixed", allowed_origins=["*", APP]),
        "/own": Gateway(EchoHub, name="own"),
    }
    with serve_gateways(gateways) as server:
        yield server


def _negotiate(live: Live, path: str, origin: str | None) -> tuple[int, dict[str, str]]:
    headers = {"Origin": origin} if origin is not None else {}
    reply = request(live.port, "POST", f"{path}/negotiate?negotiateVersion=1", headers=headers)
    if reply.status == 200:
        request(live.port, "DELETE", f"{path}?id={reply.json()['connectionToken']}")
    return reply.status, reply.headers


# --- CORS ---------------------------------------------------------------------------------------


def test_an_allowed_origin_gets_cors_headers_with_credentials(live: Live) -> None:
    status, headers = _negotiate(live, "/strict", APP)
    assert status == 200
    assert headers["access-control-allow-origin"] == APP
    assert headers["access-control-allow-credentials"] == "true"
    assert "origin" in headers["vary"].lower()


def test_the_preflight_of_an_allowed_origin_answers_what_the_client_asks_for(live: Live) -> None:
    reply = request(live.port, "OPTIONS", "/strict/negotiate?negotiateVersion=1", headers={
        "Origin": APP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, x-requested-with, x-signalr-user-agent",
    })
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == APP
    assert reply.headers["access-control-allow-credentials"] == "true"
    assert "POST" in reply.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in reply.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-requested-with", "x-signalr-user-agent"} <= allowed


@pytest.mark.parametrize("origin", [EVIL, *LOOKALIKES])
def test_an_origin_not_in_the_list_is_403_everywhere_and_creates_nothing(live: Live, origin: str) -> None:
    registry = live.gateways["/strict"].registry
    before = len(registry)
    status, headers = _negotiate(live, "/strict", origin)
    assert status == 403
    # the page may read why it was refused, and nothing more: no credentials, no connection
    assert headers.get("access-control-allow-origin") == origin
    assert "access-control-allow-credentials" not in headers
    assert len(registry) == before
    preflight = request(live.port, "OPTIONS", "/strict/negotiate", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 403 and "access-control-allow-credentials" not in preflight.headers


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "OPTIONS"])
def test_a_foreign_origin_cannot_use_or_close_someone_elses_connection(live: Live, method: str) -> None:
    token = negotiate(live.port, "/strict")["connectionToken"]
    body = HANDSHAKE.encode() if method == "POST" else b""
    reply = request(live.port, method, f"/strict?id={token}", headers={"Origin": EVIL}, body=body)
    assert reply.status == 403
    assert reply.error == f"origin {EVIL!r} is not allowed"
    assert sse(live.port, "/strict", token, headers={"Origin": EVIL}).status == 403
    assert token in live.gateways["/strict"].registry.by_token  # still alive, and still usable from its own page
    assert request(live.port, "GET", f"/strict?id={token}", headers={"Origin": APP}).status == 200
    assert request(live.port, "DELETE", f"/strict?id={token}").status == 202


@pytest.mark.parametrize("origin", [None, "own"])
def test_same_origin_and_originless_requests_need_no_cors(live: Live, origin: str | None) -> None:
    status, headers = _negotiate(live, "/strict", live.origin if origin == "own" else None)
    assert status == 200
    assert "access-control-allow-origin" not in headers
    assert "access-control-allow-credentials" not in headers


def test_a_gateway_with_no_list_serves_only_its_own_origin(live: Live) -> None:
    assert _negotiate(live, "/own", live.origin)[0] == 200
    assert _negotiate(live, "/own", APP)[0] == 403


@pytest.mark.parametrize(
    "origin",
    [EVIL, "null", "*"],
)
@pytest.mark.parametrize("path", ["/open", "/mixed"])
def test_a_wildcard_never_comes_with_credentials(live: Live, path: str, origin: str) -> None:
    status, headers = _negotiate(live, path, origin)
    assert status == 200
    assert headers["access-control-allow-origin"] in (origin, "*")
    assert headers.get("access-control-allow-credentials") != "true"


def test_next_to_a_wildcard_an_origin_named_in_the_list_keeps_its_credentials(live: Live) -> None:
    status, headers = _negotiate(live, "/mixed", APP)
    assert status == 200
    assert headers["access-control-allow-origin"] == APP
    assert headers["access-control-allow-credentials"] == "true"


# --- ForeverFrame targetOrigin ------------------------------------------------------------------

_TARGET = re.compile(rb"parent\.postMessage\(\{gw:\"f\",d:d\},\"([^\"]*)\"\)")


def _frame(live: Live, path: str, origin_param: str | None, header: str | None = None) -> RawStream:
    token = negotiate(live.port, path)["connectionToken"]
    query = f"{path}?id={token}&transport=ForeverFrame&frame=f" + (f"&origin={origin_param}" if origin_param else "")
    return RawStream(live.port, query, headers={"Origin": header} if header else None)


@pytest.mark.parametrize(("path", "target"), [("/strict", APP), ("/open", EVIL), ("/strict", "own")])
def test_a_frame_posts_only_to_the_allowed_origin_it_names(live: Live, path: str, target: str) -> None:
    target = live.origin if target == "own" else target
    frame = _frame(live, path, target)
    assert frame.status == 200
    prelude = frame.read_until(b"-->")
    match = _TARGET.search(prelude)
    assert match is not None, prelude[:400]
    assert match.group(1).decode() == target  # never "*": the payload goes to that origin alone
    frame.close()


@pytest.mark.parametrize("target", [None, EVIL, "*", *LOOKALIKES])
def test_a_frame_for_an_origin_not_in_the_list_is_403(live: Live, target: str | None) -> None:
    frame = _frame(live, "/strict", target)
    assert frame.status == 403
    assert "not allowed to embed this frame" in (frame.error or "")


def test_the_frame_origin_is_checked_even_when_the_request_origin_is_allowed(live: Live) -> None:
    assert _frame(live, "/strict", EVIL, header=APP).status == 403


def test_a_frame_id_that_could_inject_markup_is_400(live: Live) -> None:
    token = negotiate(live.port, "/strict")["connectionToken"]
    frame = RawStream(live.port, f"/strict?id={token}&transport=ForeverFrame&origin={APP}&frame=%3C/script%3E")
    assert frame.status == 400


# --- WebSocket Origin ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "origin"), [("/strict", APP), ("/strict", None), ("/strict", "own"), ("/open", EVIL)])
def test_a_websocket_from_an_allowed_origin_is_accepted(live: Live, path: str, origin: str | None) -> None:
    token = negotiate(live.port, path)["connectionToken"]
    header = live.origin if origin == "own" else origin
    ws = RawWebSocket(live.port, f"{path}?id={token}", headers={"Origin": header} if header else None)
    assert ws.accepted
    ws.send_text(HANDSHAKE)
    assert ws.records(lambda r: bool(r)) == ["{}"]
    ws.close()


@pytest.mark.parametrize("origin", [EVIL, *LOOKALIKES])
def test_a_websocket_from_another_origin_is_refused_and_the_connection_survives(live: Live, origin: str) -> None:
    token = negotiate(live.port, "/strict")["connectionToken"]
    ws = RawWebSocket(live.port, f"/strict?id={token}", headers={"Origin": origin})
    assert not ws.accepted
    assert ws.status == 403
    assert ws.error == f"origin {origin!r} is not allowed"
    assert token in live.gateways["/strict"].registry.by_token
    assert RawWebSocket(live.port, f"/strict?id={token}", headers={"Origin": APP}).accepted
