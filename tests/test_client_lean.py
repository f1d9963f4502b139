"""The lean client (the load generator's driver) on both hub protocols, against the demo on a real uvicorn.

MessagePack carries bytes, which JSON cannot: an Echo of bytes that comes back as bytes shows the
lean client really spoke MessagePack on the wire.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from gateway.client.lean import LEAN_CLIENTS, LeanClient
from gateway.client.protocols import HttpPool

if TYPE_CHECKING:
    from conftest import LiveServer

BLOB = bytes(range(256))


@pytest.fixture
async def pool(server: LiveServer) -> AsyncIterator[HttpPool]:
    pool = HttpPool(server.host, server.port)
    yield pool
    pool.close()


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("transport", ["WebSockets", "LongPolling"])
async def test_messagepack_echo_and_group_bursts(pool: HttpPool, transport: str) -> None:
    bursts: list[dict[str, Any]] = []

    def on_invocation(target: str, arguments: list[Any]) -> None:
        if target == "burst":
            bursts.append(arguments[0])

    client: LeanClient = LEAN_CLIENTS[transport]("/hubs/echo", pool, on_invocation, protocol="messagepack")
    await client.connect()
    try:
        assert client.session.protocol.name == "messagepack"
        assert await client.invoke("Echo", BLOB) == BLOB
        assert await client.invoke("Echo", {"s": "é", "n": [1, 2.5, None]}) == {"s": "é", "n": [1, 2.5, None]}
        group = secrets.token_hex(4)
        await client.invoke("Join", group)
        assert await client.invoke("PushGroup", group, 50) == 50
        await _until(lambda: len(bursts) >= 50)
        assert [b["i"] for b in bursts] == list(range(1, 51))
        client.ping()
        assert client.alive
    finally:
        client.close()
    assert not client.alive


@pytest.mark.parametrize("transport", ["WebSockets", "LongPolling", "ServerSentEvents"])
async def test_json_stays_the_default(pool: HttpPool, transport: str) -> None:
    client = LEAN_CLIENTS[transport]("/hubs/echo", pool)
    await client.connect()
    try:
        assert client.session.protocol.name == "json"
        assert await client.invoke("Echo", "x" * 32) == "x" * 32
    finally:
        client.close()


@pytest.mark.parametrize("transport", ["ServerSentEvents", "ForeverFrame"])
async def test_messagepack_is_refused_on_text_transports(pool: HttpPool, transport: str) -> None:
    with pytest.raises(ValueError, match="text only"):
        LEAN_CLIENTS[transport]("/hubs/echo", pool, protocol="messagepack")


async def test_unknown_protocol_is_refused(pool: HttpPool) -> None:
    with pytest.raises(ValueError, match="unknown hub protocol"):
        LEAN_CLIENTS["WebSockets"]("/hubs/echo", pool, protocol="xml")


async def test_a_refused_upgrade_raises_and_leaves_no_unretrieved_exception(
    pool: HttpPool, caplog: pytest.LogCaptureFixture,
) -> None:
    class Misdirected(LEAN_CLIENTS["WebSockets"]):  # type: ignore[misc,valid-type]
        def _target(self, **params: str) -> str:
            return super()._target(**params).replace("id=", "id=unknown")

    client = Misdirected("/hubs/echo", pool)
    refused = ""
    try:  # no pytest.raises: its record of the exception would keep the failed futures alive past the check
        await client.connect()
    except Exception as exc:
        refused = str(exc)
    assert "404" in refused
    del client
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        await asyncio.sleep(0.05)  # the closed socket lets go of the client
        gc.collect()  # a future whose exception nobody read says so when it is collected
        await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
