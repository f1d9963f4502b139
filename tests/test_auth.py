"""The auth hook: negotiate sees the request (bearer header, cookie or ``access_token``) and returns a user id or
refuses with 401/403. The user is on the hub context, ``clients.user(id)`` reaches every connection of that user, and
the long-lived credential is needed at negotiate only: the connection token carries the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from live import HANDSHAKE, Live, request, serve_gateways

from gateway import Gateway, Refused
from gateway.client import BY_NAME, HttpClient, HubClient, Origin
from gateway.demo.hubs import EchoHub
from gateway.protocol import hubjson
from gateway.protocol.messages import Invocation
from gateway.server.asgi import Request

APP = "https://app.example"
CREDENTIALS = {"alice-long-lived-secret": "alice", "bob-long-lived-secret": "bob"}
TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
CALLS: list[dict[str, Any]] = []


def credential_of(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value
    cookie = SimpleCookie(request.headers.get("cookie", ""))
    if "session" in cookie:
        return cookie["session"].value
    return request.query.get("access_token")


async def authenticate(request: Request) -> str | None:
    credential = credential_of(request)
    CALLS.append({"path": request.path, "credential": credential})
    if credential is None:
        raise Refused(401, "sign in first")
    user = CREDENTIALS.get(credential)
    if user is None:
        raise Refused(403, "this credential is not valid here")
    return user


async def optional(request: Request) -> str | None:
    credential = credential_of(request)
    return CREDENTIALS.get(credential) if credential else None


async def broken(request: Request) -> str | None:
    raise RuntimeError("the identity provider is down")


class AuthHub(EchoHub):
    async def notify(self, user: str, text: str) -> None:
        await self.clients.user(str(user)).send("note", text)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateways = {
        "/auth": Gateway(AuthHub, name="auth", authenticate=authenticate, allowed_origins=[APP]),
        "/optional": Gateway(AuthHub, name="optional", authenticate=optional),
        "/broken": Gateway(AuthHub, name="broken", authenticate=broken),
    }
    with serve_gateways(gateways) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


def _negotiate(live: Live, path: str = "/auth", headers: dict[str, str] | None = None, query: str = "") -> Any:
    return request(live.port, "POST", f"{path}/negotiate?negotiateVersion=1{query}", headers=headers)


# --- refusals -----------------------------------------------------------------------------------


def test_no_credential_is_401_and_creates_no_connection(live: Live) -> None:
    reply = _negotiate(live)
    assert (reply.status, reply.error) == (401, "sign in first")
    assert len(live.gateways["/auth"].registry) == 0


@pytest.mark.parametrize("headers, query", [
    ({"Authorization": "Bearer stolen-or-expired"}, ""),
    ({"Cookie": "session=stolen-or-expired"}, ""),
    ({}, "&access_token=stolen-or-expired"),
])
def test_a_credential_the_hook_rejects_is_403(live: Live, headers: dict[str, str], query: str) -> None:
    reply = _negotiate(live, headers=headers, query=query)
    assert (reply.status, reply.error) == (403, "this credential is not valid here")
    assert len(live.gateways["/auth"].registry) == 0


def test_a_refusal_carries_cors_headers_so_the_page_can_read_why(live: Live) -> None:
    reply = _negotiate(live, headers={"Origin": APP})
    assert reply.status == 401
    assert reply.headers["access-control-allow-origin"] == APP


def test_a_connection_token_is_not_a_credential(live: Live) -> None:
    token = _negotiate(live, headers={"Authorization": "Bearer alice-long-lived-secret"}).json()["connectionToken"]
    assert _negotiate(live, headers={"Authorization": f"Bearer {token}"}).status == 403
    request(live.port, "DELETE", f"/auth?id={token}")


def test_a_hook_that_fails_is_a_500_and_the_server_stays_up(live: Live) -> None:
    assert _negotiate(live, "/broken").status == 500
    assert len(live.gateways["/broken"].registry) == 0
    assert _negotiate(live, "/optional").status == 200


# --- identity -----------------------------------------------------------------------------------


async def _whoami_over(live: Live, transport: str, token: str, path: str = "/auth") -> dict[str, Any]:
    """Handshake and ``Whoami`` over one transport, with no credential on any request: the token alone."""
    origin = Origin.parse(live.url(path))
    http = HttpClient(origin)
    reader = hubjson.RecordReader()
    records: list[str] = []
    closed: list[Exception | None] = []
    stream = BY_NAME[transport](origin, http, lambda text: records.extend(reader.feed(text)), closed.append)
    await stream.connect(token)
    try:
        await stream.send(HANDSHAKE)
        await stream.send(hubjson.encode(Invocation("Whoami", [], "1")))
        for _ in range(500):
            completions = [hubjson.parse_message(r) for r in records[1:]]
            if completions:
                break
            await asyncio.sleep(0.01)
        assert records[0] == "{}", records
        [completion] = completions
        result: dict[str, Any] = completion.result  # type: ignore[union-attr]
        return result
    finally:
        await stream.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("carrier", ["bearer", "cookie", "access_token"])
async def test_the_user_from_negotiate_is_on_the_hub_context_and_streams_need_only_the_token(
    live: Live, carrier: str, transport: str,
) -> None:
    secret = "alice-long-lived-secret"
    headers = {"bearer": {"Authorization": f"Bearer {secret}"}, "cookie": {"Cookie": f"theme=dark; session={secret}"},
               "access_token": {}}[carrier]
    query = f"&access_token={secret}" if carrier == "access_token" else ""
    reply = await asyncio.to_thread(_negotiate, live, "/auth", headers, query)
    assert reply.status == 200
    body = reply.json()
    whoami = await _whoami_over(live, transport, body["connectionToken"])
    assert whoami == {"connectionId": body["connectionId"], "user": "alice"}
    assert [call["credential"] for call in CALLS] == [secret]  # the hook ran at negotiate, and only there


async def test_an_anonymous_connection_has_no_user(live: Live) -> None:
    body = (await asyncio.to_thread(_negotiate, live, "/optional")).json()
    assert (await _whoami_over(live, "LongPolling", body["connectionToken"], "/optional"))["user"] is None


async def test_a_resume_does_not_run_the_hook_again(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "bob-long-lived-secret"
    client = HubClient(live.url("/auth") + f"?access_token={secret}", transport="ServerSentEvents",
                       stateful_reconnect=True)
    await client.start()
    assert (await client.invoke("Whoami"))["user"] == "bob"
    await client._transport.abort()
    assert (await client.invoke("Whoami"))["user"] == "bob"
    await client.close()
    assert len(CALLS) == 1
    assert not [r.getMessage() for r in caplog.records if secret in r.getMessage() + repr(r.args)]


async def test_clients_user_reaches_every_connection_of_that_user_on_every_transport(live: Live) -> None:
    def client(user: str, transport: str) -> HubClient:
        secret = next(s for s, u in CREDENTIALS.items() if u == user)
        return HubClient(live.url("/auth") + f"?access_token={secret}", transport=transport)

    alices = [client("alice", t) for t in TRANSPORTS]
    bob = client("bob", "WebSockets")
    notes: dict[int, list[str]] = {id(c): [] for c in [*alices, bob]}
    for c in [*alices, bob]:
        c.on("note", notes[id(c)].append)
        await c.start()
    registry = live.gateways["/auth"].registry
    assert len(registry.users["alice"]) == 4 and len(registry.users["bob"]) == 1

    await bob.invoke("Notify", "alice", "from a hub method")
    gateway = live.gateways["/auth"]  # e.g. a background job, outside any hub, on the server's loop
    await asyncio.to_thread(live.call, lambda: gateway.clients.user("alice").send("note", "from outside any hub"))
    await _wait(lambda: all(len(notes[id(c)]) == 2 for c in alices))
    assert all(notes[id(c)] == ["from a hub method", "from outside any hub"] for c in alices)
    assert notes[id(bob)] == []

    await alices[0].close()
    await _wait(lambda: len(registry.users.get("alice", ())) == 3)
    for c in [*alices[1:], bob]:
        await c.close()
    await _wait(lambda: not registry.users)


async def _wait(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)



@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_python_client_sends_its_credential_with_negotiate_only(live: Live, transport: str) -> None:
    client = HubClient(f"http://127.0.0.1:{live.port}/auth", transport=transport,
                       headers={"Authorization": "Bearer bob-long-lived-secret"})
    await client.start()
    try:
        assert (await client.invoke("Whoami"))["user"] == "bob"
    finally:
        await client.close()
    assert [call["credential"] for call in CALLS] == ["bob-long-lived-secret"]
    refused = HubClient(f"http://127.0.0.1:{live.port}/auth", transport=transport)
    with pytest.raises(Exception, match="401|sign in"):
        await refused.start()
