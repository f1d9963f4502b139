"""Streams both ways and client results, against a real uvicorn, with the Python client, once per hub protocol and
transport pair that negotiate allows (JSON on every transport, MessagePack on WebSockets and LongPolling).

A server stream of 1,000 items arrives in order; a client stream of 1,000 items is summed; a client result
answers with a value, an error, a timeout or a disconnect; a cancelled stream's ``finally`` runs within 1 s;
a cut mid-stream under stateful reconnect loses nothing and repeats nothing; bad input gets clear errors and
leaves the connection open; a slow client makes a stream wait instead of overflowing its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from conftest import Wire
from live import Live, serve_gateways
from test_faults import Relay

from gateway import Gateway, Hub, HubError, Settings
from gateway.client import HubClient
from gateway.client import HubError as ClientHubError
from gateway.demo.hubs import EchoHub
from gateway.hub import ClientResultError
from gateway.protocol.hubprotocols import PROTOCOLS
from gateway.protocol.messages import Completion, HubMessage, Invocation, StreamItem

TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
SETTINGS = Settings(max_streams_per_connection=3, client_result_timeout=5.0, poll_timeout=1.0,
                    keepalive_interval=0.5, client_timeout=5.0, disconnect_timeout=5.0)
SLOW = Settings(stream_buffer=16 * 1024, max_buffer=64 * 1024, keepalive_interval=0.5, poll_timeout=1.0)

FINALLY: dict[str, float] = {}
"""When each ``Forever`` stream's ``finally`` ran (time.monotonic), by its tag."""
OUTCOMES: dict[str, Any] = {}
"""What server-side code saw, by a tag the test chooses."""
PRODUCED: dict[str, int] = {}


class StreamHub(Hub):
    async def count(self, n: int, delay_ms: float) -> AsyncIterator[int]:
        for i in range(n):
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            yield i

    async def forever(self, tag: str) -> AsyncIterator[int]:
        i = 0
        try:
            while True:
                yield i
                i += 1
                await asyncio.sleep(0.01)
        finally:
            FINALLY[tag] = time.monotonic()

    async def fail_after(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
        raise HubError(f"failed after {n}")

    async def sum(self, stream: AsyncIterator[float]) -> float:
        total = 0.0
        async for value in stream:
            total += value
        return total

    async def record_sum(self, tag: str, stream: AsyncIterator[float]) -> None:
        try:
            OUTCOMES[tag] = await self.sum(stream)
        except BaseException as exc:
            OUTCOMES[tag] = exc
            raise

    async def ask(self, tag: str, method: str, arg: Any, timeout: float) -> Any:
        try:
            OUTCOMES[tag] = await self.clients.caller.invoke(method, arg, timeout=timeout)
        except ClientResultError as exc:
            OUTCOMES[tag] = exc
            raise
        return OUTCOMES[tag]

    async def ask_through_a_helper(self, method: str) -> Any:
        return await _ask_the_caller(self, method)

    async def big(self, tag: str) -> AsyncIterator[str]:
        PRODUCED[tag] = 0
        while True:
            PRODUCED[tag] += 1
            yield "x" * 100

    async def echo(self, value: Any) -> Any:
        return value


async def _ask_the_caller(hub: Hub, method: str) -> Any:
    return await hub.clients.caller.invoke(method, 1, timeout=5.0)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    gateways = {
        "/streams": Gateway(StreamHub, name="streams", settings=SETTINGS),
        "/slow": Gateway(StreamHub, name="slow", settings=SLOW),
        "/hubs/echo": Gateway(EchoHub, name="echo"),
    }
    with serve_gateways(gateways) as server:
        yield server


@contextlib.asynccontextmanager
async def started(url: str, transport: str, protocol: str = "json", **options: Any) -> AsyncIterator[HubClient]:
    client = HubClient(url, transport=transport, protocol=protocol, **options)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# --- the demo's contract ---------------------------------------------------------------------------


async def test_the_demo_streams_both_ways_and_asks_the_client(live: Live, wire: Wire) -> None:
    async with started(live.url("/hubs/echo"), wire.transport, wire.protocol) as client:
        items = [item async for item in client.stream("Counter", 1000, 0)]
        assert items == list(range(1000))
        assert await client.invoke("Sum", numbers(1000)) == sum(range(1000))
        client.on("double", lambda x: x * 2)
        assert await client.invoke("AskClient", "double", 21) == 42
        assert await client.invoke("Echo", "still here") == "still here"


async def test_the_demo_bounds_its_inputs(live: Live) -> None:
    async with started(live.url("/hubs/echo"), "WebSockets") as client:
        with pytest.raises(ClientHubError, match="count must be an integer from 0 to 10000"):
            [item async for item in client.stream("Counter", 10_001, 0)]
        with pytest.raises(ClientHubError, match="delayMs must be a number from 0 to 1000"):
            [item async for item in client.stream("Counter", 1, 1001)]
        with pytest.raises(ClientHubError, match="Sum takes a stream of numbers"):
            await client.invoke("Sum", aiter_of(["one"]))


async def aiter_of(values: list[Any]) -> AsyncIterator[Any]:
    for value in values:
        yield value


# --- server to client ------------------------------------------------------------------------------


async def test_a_server_stream_of_1000_items_arrives_in_order(live: Live, wire: Wire) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        assert [item async for item in client.stream("Count", 1000, 0)] == list(range(1000))


async def test_a_stream_that_fails_ends_with_its_error_after_its_items(live: Live, wire: Wire) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        items: list[int] = []
        with pytest.raises(ClientHubError, match="failed after 3"):
            async for item in client.stream("FailAfter", 3):
                items.append(item)
        assert items == [0, 1, 2]


async def test_cancelling_a_stream_runs_its_finally_within_a_second(live: Live, wire: Wire) -> None:
    tag = f"cancel-{wire.id}"
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        async with contextlib.aclosing(client.stream("Forever", tag)) as items:
            async for item in items:
                if item == 3:
                    break
        cancelled = time.monotonic()
        assert await until(lambda: tag in FINALLY, 1.0), "the generator's finally did not run within 1 s"
        assert FINALLY[tag] - cancelled < 1.0
        assert await client.invoke("Echo", 1) == 1


async def test_a_closing_connection_runs_a_streams_finally_within_a_second(live: Live, wire: Wire) -> None:
    tag = f"close-{wire.id}"
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        stream = client.stream("Forever", tag)
        assert await anext(stream) == 0
    closed = time.monotonic()
    assert await until(lambda: tag in FINALLY, 1.0), "the generator's finally did not run within 1 s"
    assert FINALLY[tag] - closed < 1.0
    await stream.aclose()


async def test_a_cut_mid_stream_under_stateful_reconnect_loses_and_repeats_nothing(
    live: Live, wire: Wire,
) -> None:
    relay = Relay(live.port)
    await relay.start()
    try:
        async with started(relay.url("/streams"), wire.transport, wire.protocol, stateful_reconnect=True) as client:
            items: list[int] = []
            async for item in client.stream("Count", 300, 5):
                items.append(item)
                if item in (60, 180):
                    assert relay.reset() > 0
            assert items == list(range(300))
    finally:
        await relay.stop()


# --- client to server ------------------------------------------------------------------------------


async def test_a_client_stream_of_1000_items_is_summed(live: Live, wire: Wire) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        assert await client.invoke("Sum", numbers(1000)) == sum(range(1000))


async def test_a_client_stream_that_fails_raises_in_the_hub_method(live: Live, wire: Wire) -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise ValueError("the source broke")

    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        with pytest.raises(ClientHubError, match="the source broke"):
            await client.invoke("Sum", broken())


# --- client results --------------------------------------------------------------------------------


async def test_a_client_result_returns_the_handlers_value(live: Live, wire: Wire) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        async def slow_upper(text: str) -> str:
            await asyncio.sleep(0.01)
            return text.upper()

        client.on("upper", slow_upper)
        assert await client.invoke("Ask", "value", "upper", "abc", 5.0) == "ABC"


async def test_a_client_result_carries_the_clients_error(live: Live, wire: Wire) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        def refuse(_: Any) -> None:
            raise ValueError("no, thanks")

        client.on("refuse", refuse)
        with pytest.raises(ClientHubError, match="no, thanks"):
            await client.invoke("Ask", "error", "refuse", 1, 5.0)
        with pytest.raises(ClientHubError, match="Client didn't provide a result."):
            await client.invoke("Ask", "nohandler", "nobody", 1, 5.0)


async def test_a_method_that_asks_only_through_a_helper_fails_clearly_instead_of_waiting_for_itself(
    live: Live, wire: Wire,
) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        client.on("double", lambda x: 2 * x)
        started_at = time.monotonic()
        with pytest.raises(ClientHubError, match="would wait for itself"):
            await client.invoke("AskThroughAHelper", "double")
        assert time.monotonic() - started_at < 2.0  # at once, not after the 5 s timeout
        assert await client.invoke("Ask", "direct", "double", 21, 5.0) == 42  # asked from its own body: works


async def test_a_client_result_times_out(live: Live, wire: Wire) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        client.on("sleepy", lambda _: asyncio.sleep(2))
        started_at = time.monotonic()
        with pytest.raises(ClientHubError, match="did not answer 'sleepy' within 0.3 s"):
            await client.invoke("Ask", "timeout", "sleepy", 1, 0.3)
        assert time.monotonic() - started_at < 1.5
        assert await client.invoke("Echo", 1) == 1


async def test_a_client_that_disconnects_fails_its_client_result(live: Live, wire: Wire) -> None:
    tag = f"gone-{wire.id}"
    client = HubClient(live.url("/streams"), transport=wire.transport, protocol=wire.protocol)
    await client.start()
    asked = asyncio.Event()

    async def never(_: Any) -> None:
        asked.set()
        await asyncio.sleep(60)

    client.on("never", never)
    call = asyncio.ensure_future(client.invoke("Ask", tag, "never", 1, 30.0))
    await asyncio.wait_for(asked.wait(), 5)
    await client.close()
    with pytest.raises(ConnectionError):
        await call
    assert await until(lambda: tag in OUTCOMES, 2.0)
    assert isinstance(OUTCOMES[tag], ClientResultError)
    assert "closed" in str(OUTCOMES[tag])


async def test_gateway_clients_invoke_from_outside_a_hub(live: Live) -> None:
    gateway = live.gateways["/streams"]
    async with started(live.url("/streams"), "WebSockets") as client:
        client.on("add", lambda a, b: a + b)
        connection_id = client.connection_id
        assert connection_id is not None
        future = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            gateway.clients.client(connection_id).invoke("add", 2, 3, timeout=5), live.loop))  # type: ignore[arg-type]
        assert await future == 5
        with pytest.raises(TypeError, match="invoke"):
            await gateway.clients.all.invoke("add", 1, 2)
        unknown = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            gateway.clients.client("nobody").invoke("add", 1, 2), live.loop))  # type: ignore[arg-type]
        with pytest.raises(ClientResultError, match="not connected to this server"):
            await unknown


# --- bad input ----------------------------------------------------------------------------------


async def test_stray_stream_messages_are_ignored_and_the_connection_stays(live: Live, wire: Wire) -> None:
    tag = f"stray-{wire.id}"
    protocol = PROTOCOLS[wire.protocol]

    def records(*messages: HubMessage) -> Any:
        encoded = [protocol.encode(message) for message in messages]
        return "".join(encoded) if wire.protocol == "json" else b"".join(encoded)

    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        await client.send_raw(records(StreamItem("no-such-stream", 1)))  # unknown stream id
        await client.send_raw(records(Completion("never-asked", 1, has_result=True)))  # a result never asked
        await client.send_raw(records(
            Invocation("RecordSum", [tag], stream_ids=["u1"]), StreamItem("u1", 1), StreamItem("u1", 2),
            Completion("u1"),
            StreamItem("u1", 100), Completion("u1"),  # after completion
        ))
        assert await until(lambda: tag in OUTCOMES)
        assert OUTCOMES[tag] == 3
        assert await client.invoke("Echo", "alive") == "alive"


async def test_an_oversized_stream_item_closes_that_connection_only(live: Live, wire: Wire) -> None:
    tag = f"oversized-{wire.id}"
    limit = SETTINGS.max_message_size
    over: Any = "x" * limit if wire.protocol == "json" else b"x" * limit

    async def items() -> AsyncIterator[Any]:
        yield 1
        await asyncio.sleep(0.05)
        yield over
        yield 2

    async with started(live.url("/streams"), wire.transport, wire.protocol) as bystander:
        bystander.on("double", lambda x: x * 2)
        async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(client.invoke("RecordSum", tag, items()), 5)
            reason = await asyncio.wait_for(client.wait_closed(), 5)
            assert reason is not None and f"exceeds the limit of {limit} bytes" in reason, reason
        assert await until(lambda: tag in OUTCOMES, 1.0), "the hub method still waits for its stream"
        assert not isinstance(OUTCOMES[tag], float), OUTCOMES[tag]
        assert [item async for item in bystander.stream("Count", 3, 0)] == [0, 1, 2]
        assert await bystander.invoke("Sum", numbers(10)) == 45
        assert await bystander.invoke("Ask", f"{tag}-ask", "double", 21, 5.0) == 42


async def test_a_stream_and_a_call_of_the_wrong_kind_are_refused(live: Live, wire: Wire) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        with pytest.raises(ClientHubError, match="streaming 'Count' method with a non-streaming invocation"):
            await client.invoke("Count", 1, 0)
        with pytest.raises(ClientHubError, match="non-streaming 'Echo' method with a streaming invocation"):
            [item async for item in client.stream("Echo", 1)]
        with pytest.raises(ClientHubError, match="Client sent 0 stream"):
            await client.invoke("Sum")


async def test_too_many_streams_are_refused(live: Live, wire: Wire) -> None:
    async with started(live.url("/streams"), wire.transport, wire.protocol) as client:
        limit = SETTINGS.max_streams_per_connection
        streams = [client.stream("Forever", f"many-{wire.id}-{i}") for i in range(limit)]
        for stream in streams:
            assert await anext(stream) == 0
        with pytest.raises(ClientHubError, match=r"Too many streams on this connection \(limit 3\)"):
            [item async for item in client.stream("Count", 1, 0)]
        with pytest.raises(ClientHubError, match="Too many streams"):
            await client.invoke("Sum", numbers(1))
        for stream in streams:
            await stream.aclose()
        assert await until(lambda: all(f"many-{wire.id}-{i}" in FINALLY for i in range(3)))
        assert [item async for item in client.stream("Count", 2, 0)] == [0, 1]


# --- backpressure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["WebSockets", "LongPolling"])
async def test_a_client_that_does_not_ack_makes_the_stream_wait_instead_of_overflowing(
    live: Live, transport: str,
) -> None:
    tag = f"slow-{transport}"
    async with started(live.url("/slow"), transport, stateful_reconnect=True, ack_interval=3600) as client:
        stream = client.stream("Big", tag)
        await anext(stream)
        await asyncio.sleep(0.5)
        produced = PRODUCED[tag]
        await asyncio.sleep(0.3)
        assert PRODUCED[tag] == produced, "the generator kept running"
        item_bytes = len('{"type":2,"invocationId":"1","item":""}\x1e') + 100
        assert produced * item_bytes < SLOW.max_buffer, "the outbox grew past the stream buffer"
        assert client.close_error is None
        assert await client.invoke("Echo", 1) == 1
        await stream.aclose()
