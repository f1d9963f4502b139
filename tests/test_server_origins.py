"""server/origins.py with a tiny inline ASGI app: the policy, the 403, the CORS headers and the preflight."""

from __future__ import annotations

import httpx

from gateway.server.asgi import Receive, Request, Scope, Send, respond
from gateway.server.origins import OriginPolicy, preflight

POLICY = OriginPolicy(["https://app.test", "*.nope"])


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope)
    if await POLICY.refused(request, send):
        return
    send = POLICY.cors(request, send)
    if request.method == "OPTIONS":
        await preflight(request, send)
    else:
        await respond(send, 200, b"ok")


async def get(method: str = "GET", **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as client:
        return await client.request(method, "/", headers=headers)


async def test_the_own_origin_and_no_origin_get_no_cors_headers() -> None:
    for headers in ({}, {"origin": "http://gw.test"}):
        response = await get(**headers)
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


async def test_an_allowed_origin_gets_cors_with_credentials() -> None:
    response = await get(origin="https://app.test")
    assert response.headers["access-control-allow-origin"] == "https://app.test"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["vary"] == "Origin"


async def test_another_origin_gets_a_readable_403() -> None:
    response = await get(origin="https://evil.test")
    assert response.status_code == 403
    assert response.json() == {"error": "origin 'https://evil.test' is not allowed"}
    assert response.headers["access-control-allow-origin"] == "https://evil.test"


async def test_a_wildcard_allows_any_origin_without_credentials() -> None:
    policy = OriginPolicy(["*"])
    request = Request({"type": "http", "path": "/", "headers": [(b"host", b"gw.test")]})
    assert policy.allows(request, "https://any.test")
    assert not OriginPolicy().allows(request, "https://any.test")


async def test_a_preflight_echoes_the_requested_headers() -> None:
    response = await get("OPTIONS", origin="https://app.test", **{"access-control-request-headers": "x-a"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-headers"] == "x-a"
    assert "DELETE" in response.headers["access-control-allow-methods"]
