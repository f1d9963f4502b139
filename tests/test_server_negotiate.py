"""server/negotiate.py with a tiny inline ASGI app: validation, the auth hook, capacity, versions."""

from __future__ import annotations

import httpx

from gateway.protocol import Connection
from gateway.protocol.negotiate import NegotiateRequest
from gateway.server.asgi import Receive, Request, Scope, Send
from gateway.server.connection import ServerConnection
from gateway.server.negotiate import Refusal, Refused, negotiate

OPENED: list[tuple[NegotiateRequest, str | None]] = []


async def authenticate(request: Request) -> str | None:
    if request.headers.get("authorization") == "no":
        raise Refused(403, "go away")
    return request.headers.get("authorization")


async def open_connection(query: NegotiateRequest, user: str | None, request: Request) -> ServerConnection | Refusal:
    if user == "full":
        return Refusal(503, "too many connections", 5)
    OPENED.append((query, user))
    core = Connection(0.0)

    async def dispatch(conn: ServerConnection, received: object) -> None: ...

    return ServerConnection("cid", "secret-token", core, lambda: 0.0, dispatch, lambda conn: None, user)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await negotiate(Request(scope), send, authenticate, ["WebSockets", "LongPolling"], open_connection)


async def post(query: str, method: str = "POST", **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as client:
        return await client.request(method, f"/negotiate?{query}", headers=headers)


async def test_version_1_answers_the_token_and_the_offered_transports_in_order() -> None:
    OPENED.clear()
    response = await post("negotiateVersion=1&useStatefulReconnect=true", authorization="ann")
    body = response.json()
    assert response.status_code == 200 and body["connectionToken"] == "secret-token"
    assert [t["transport"] for t in body["availableTransports"]] == ["WebSockets", "LongPolling"]
    assert body["useStatefulReconnect"] is True
    assert [(NegotiateRequest(1, True), "ann")] == OPENED


async def test_version_0_has_no_token() -> None:
    body = (await post("")).json()
    assert "connectionToken" not in body and body["connectionId"] == "cid"


async def test_refusals() -> None:
    assert (await post("", "GET")).status_code == 405
    bad = await post("negotiateVersion=x")
    assert bad.status_code == 400 and "negotiateVersion" in bad.json()["error"]
    refused = await post("negotiateVersion=1", authorization="no")
    assert (refused.status_code, refused.json()) == (403, {"error": "go away"})
    full = await post("negotiateVersion=1", authorization="full")
    assert full.status_code == 503 and full.headers["retry-after"] == "5"
