"""The hub as the server's Handler, over real server parts (registry, in-process backplane, lifecycle)
and no ASGI app: method lookup and its error paths, lifecycle hooks, and the clients.* targets."""

from __future__ import annotations

import asyncio
from typing import Any

from serverparts import Parts, handshaken, invoke, parts, records

from gateway import Hub, HubError
from gateway.backplane import InProcessBackplane
from gateway.hub import HubDispatcher, may_ask
from gateway.protocol.hubjson import encode
from gateway.protocol.messages import StreamInvocation
from gateway.server.connection import ServerConnection

EVENTS: list[tuple[str, Any]] = []


class SampleHub(Hub):
    async def echo(self, value: Any) -> Any:
        return value

    async def refuse(self) -> None:
        raise HubError("not today")

    async def crash(self) -> None:
        raise RuntimeError("a secret detail")

    async def typed(self, value: int) -> int:
        return len(value)  # type: ignore[arg-type]  # a TypeError from inside the method, not from the call

    async def not_json(self) -> object:
        return object()

    async def tell_others(self, value: Any) -> None:
        await self.clients.others.send("told", value)

    async def tell_users(self, *users: str) -> None:
        await self.clients.users(*users).send("told", "users")

    async def join(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, group)

    async def tell_group_others(self, group: str) -> None:
        await self.clients.others_in_group(group).send("told", group)

    async def on_connected(self) -> None:
        EVENTS.append(("connected", self.context.connection_id))

    async def on_disconnected(self, error: str | None) -> None:
        EVENTS.append(("disconnected", error))


class BrokenHooksHub(Hub):
    async def on_connected(self) -> None:
        raise RuntimeError("hook failed")

    async def echo(self, value: Any) -> Any:
        return value


def wired(hub: type[Hub] = SampleHub) -> Parts:
    holder: list[HubDispatcher] = []

    class Late:  # the dispatcher needs publish, which needs the parts: resolve it on first call
        async def received(self, conn: ServerConnection, received: Any) -> None:
            await holder[0].received(conn, received)

        async def closed(self, conn: ServerConnection, error: str | None) -> None:
            await holder[0].closed(conn, error)

        def moved(self, conn: ServerConnection) -> None:
            holder[0].moved(conn)

    p = parts(Late())
    holder.append(HubDispatcher(hub, "hub", p.backplane, p.publish))
    return p


async def call(p: Parts, conn: ServerConnection, target: str, *args: Any) -> dict[str, Any]:
    await conn.receive(invoke(target, *args))
    (completion,) = [r for r in records(conn) if r["type"] == 3]
    return completion


async def test_a_method_is_found_by_its_name_and_its_pascal_case_name() -> None:
    p = wired()
    conn = await handshaken(p)
    assert (await call(p, conn, "echo", 5))["result"] == 5
    assert (await call(p, conn, "TellOthers", 1)) == {"type": 3, "invocationId": "1", "result": None}


async def test_error_paths_answer_the_invocation_and_keep_the_connection() -> None:
    p = wired()
    conn = await handshaken(p)
    assert (await call(p, conn, "nope"))["error"] == "Unknown hub method 'nope'"
    assert (await call(p, conn, "refuse"))["error"] == "not today"
    crashed = (await call(p, conn, "crash"))["error"]
    assert crashed == "An unexpected error occurred invoking 'crash' on the server." and "secret" not in crashed
    assert (await call(p, conn, "echo", 1, 2))["error"] == "Failed to invoke 'echo': wrong arguments."
    assert (await call(p, conn, "typed", 3))["error"] == "An unexpected error occurred invoking 'typed' on the server."
    assert (await call(p, conn, "not_json"))["error"] == "The result of 'not_json' could not be sent."
    assert conn.id in p.registry.by_id


async def test_a_send_without_an_invocation_id_gets_no_completion_even_on_error() -> None:
    p = wired()
    conn = await handshaken(p)
    await conn.receive(invoke("crash", invocation_id=None) + invoke("nope", invocation_id=None))
    assert records(conn) == []


async def test_a_stream_invocation_of_a_method_that_does_not_stream_is_refused_with_a_completion() -> None:
    p = wired()
    conn = await handshaken(p)
    await conn.receive(encode(StreamInvocation("echo", [1], "7")))
    error = "The client attempted to invoke the non-streaming 'echo' method with a streaming invocation."
    assert records(conn) == [{"type": 3, "invocationId": "7", "error": error}]


async def test_lifecycle_hooks_run_once_each_and_a_failing_hook_is_contained() -> None:
    EVENTS.clear()
    p = wired()
    conn = await handshaken(p)
    assert [("connected", conn.id)] == EVENTS
    conn.close("bye")
    await asyncio.sleep(0.01)
    assert [("connected", conn.id), ("disconnected", "bye")] == EVENTS
    conn.close("again")
    await asyncio.sleep(0.01)
    assert len(EVENTS) == 2
    broken = wired(BrokenHooksHub)
    other = await handshaken(broken)
    assert (await call(broken, other, "echo", "still here"))["result"] == "still here"


async def test_others_reaches_every_connection_but_the_caller() -> None:
    p = wired()
    a, b, c = [await handshaken(p) for _ in range(3)]
    await call(p, a, "tell_others", "hi")
    assert [r["arguments"] for r in records(b)] == [["hi"]]
    assert [r["arguments"] for r in records(c)] == [["hi"]]
    assert records(a) == []


async def test_users_reaches_every_connection_of_each_user() -> None:
    p = wired()
    ann1, ann2, bob, eve = [await handshaken(p, user) for user in ("ann", "ann", "bob", "eve")]
    await call(p, eve, "tell_users", "ann", "bob")
    assert [len(records(conn)) for conn in (ann1, ann2, bob)] == [1, 1, 1]
    assert records(eve) == []


async def test_others_in_group_skips_the_caller_and_non_members() -> None:
    p = wired()
    a, b, outsider = [await handshaken(p) for _ in range(3)]
    await call(p, a, "join", "room")
    await call(p, b, "join", "room")
    await call(p, a, "tell_group_others", "room")
    assert [r["arguments"] for r in records(b)] == [["room"]]
    assert records(outsider) == [] and records(a) == []


def test_a_method_whose_code_names_invoke_runs_apart_from_the_reader() -> None:
    class Asking(Hub):
        async def direct(self) -> Any:
            return await self.clients.caller.invoke("x")

        async def nested(self) -> Any:
            async def inner() -> Any:
                return await self.clients.caller.invoke("x")
            return await inner()

        async def plain(self, value: Any) -> Any:
            return value

    assert may_ask(Asking.direct) and may_ask(Asking.nested) and not may_ask(Asking.plain)
    dispatcher = HubDispatcher(Asking, "asking", InProcessBackplane(), _no_publish)
    assert dispatcher.asking == {Asking.direct, Asking.nested}


async def _no_publish(target: Any, record: Any) -> None:
    return None
