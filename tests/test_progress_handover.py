"""The snapshot-then-live handover, as a property: whatever the interleaving of a worker's publishes and pages'
``Subscribe`` calls, a page that applies the snapshot and then drops every event at or below the last seq it
applied sees every step once, in order. In process (MemoryStore) and through a real redis-server (the Lua
record + PUBLISH, a Redis backplane node delivering), with the hub's connections of a real Gateway."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_backplane_redis import RedisServer

from gateway import Gateway
from gateway.progress import MemoryStore, Progress, ProgressHub, connect
from gateway.progress.redis import RedisStore
from gateway.protocol.hubjson import RS, encode_handshake_request
from gateway.server.connection import ServerConnection

Op = tuple[str, int]
OPS = st.lists(st.one_of(
    st.tuples(st.just("step"), st.integers(1, 3)),
    st.tuples(st.just("subscribe"), st.just(0)),
    st.tuples(st.just("yield"), st.integers(0, 3)),
), min_size=1, max_size=25)


class Page:
    """A page on one hub connection: buffers live events until the Subscribe reply, then applies the snapshot
    and every later event whose seq is above the last it applied."""

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.records: list[dict[str, Any]] = []

    def read(self) -> None:
        text = self.conn.core.take(time.monotonic())
        self.records += [json.loads(r) for r in text.split(RS) if r]

    def applied(self) -> list[int]:
        last, seen, buffered, answered = 0, [], [], False

        def apply(event: dict[str, Any]) -> None:
            nonlocal last
            if event["seq"] > last:
                last = event["seq"]
                seen.append(last)

        for record in self.records:
            if record.get("type") == 1 and record["target"] == "progress":
                (apply if answered else buffered.append)(record["arguments"][0])
            elif record.get("type") == 3:
                assert "error" not in record, record
                answered = True
                for event in [*record["result"]["log"], record["result"], *buffered]:
                    apply(event)
        return seen


async def _page(gateway: Gateway, job_id: str) -> tuple[Page, asyncio.Task[None]]:
    conn = gateway.create(False, None)
    await gateway.backplane.announce(gateway.name, conn.token, conn.id)
    await conn.receive(encode_handshake_request())
    conn.core.take(0)
    call = json.dumps({"type": 1, "invocationId": "1", "target": "Subscribe", "arguments": [job_id]}) + RS
    return Page(conn), asyncio.ensure_future(conn.receive(call))


async def _scenario(ops: list[Op], gateway: Gateway, progress: Progress, pause: float) -> None:
    job_id = secrets.token_hex(6)
    await progress.ajob(job_id).create(total=100)
    worker = progress.ajob(job_id)
    await worker.start()
    pages: list[tuple[Page, asyncio.Task[None]]] = []
    for kind, count in ops:
        if kind == "step":
            for _ in range(count):
                await worker.step(message="step")
        elif kind == "subscribe":
            pages.append(await _page(gateway, job_id))
        else:
            for _ in range(count):
                await asyncio.sleep(pause)
    await worker.complete()
    final = worker.outbox.record.seq
    pages.append(await _page(gateway, job_id))  # a late joiner
    await asyncio.gather(*(task for _, task in pages))
    deadline = time.monotonic() + 5
    for page, _ in pages:
        while True:
            page.read()
            if page.applied()[-1:] == [final] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        assert page.applied() == list(range(1, final + 1)), (ops, page.records)


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(ops=OPS)
def test_memory_store_never_loses_or_doubles_a_step(ops: list[Op]) -> None:
    async def run() -> None:
        store = MemoryStore()
        gateway = Gateway(ProgressHub.bind(store), name="jobs")
        store.attach(gateway.clients)
        try:
            await _scenario(ops, gateway, connect(store=store), 0)
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (scripts/setup.sh)")
    server = RedisServer()
    server.start()
    yield server.url
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@settings(PROPERTY, max_examples=25)
@given(ops=OPS)
def test_redis_store_never_loses_or_doubles_a_step(redis_url: str, ops: list[Op]) -> None:
    async def run() -> None:
        from gateway.backplane.redis import RedisBackplane

        backplane = RedisBackplane(redis_url)
        store = RedisStore(redis_url, hub="jobs")
        gateway = Gateway(ProgressHub.bind(store), name="jobs", backplane=backplane)
        await backplane.start()
        progress = connect(redis_url, hub="/hubs/jobs")
        try:
            await _scenario(ops, gateway, progress, 0.001)
        finally:
            await store.close()
            await backplane.close()

    asyncio.run(run())
