"""In-process fan-out cost: N connections on one transport, M group sends; the server's own code only
(no sockets, no Starlette): per-recipient microseconds of deliver + write + framing.

``python -m benchmarks.fanout_cpu WebSockets|ServerSentEvents|ForeverFrame N M``; far less noisy than the
socket benchmarks, so two trees can be compared in one sitting (run it from each with ``PYTHONPATH=<tree>``).
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import MutableMapping
from typing import Any

from gateway import Gateway
from gateway.demo.hubs import EchoHub

N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
M = int(sys.argv[3]) if len(sys.argv) > 3 else 200
TRANSPORT = sys.argv[1] if len(sys.argv) > 1 else "ForeverFrame"


def http(method: str, path: str, query: str = "", body: bytes = b"") -> tuple[dict[str, Any], Any]:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query.encode(), "headers": [(b"host", b"127.0.0.1"), (b"origin", b"http://x.test")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "scheme": "http", "http_version": "1.1",
             "asgi": {"version": "3.0"}}
    sent = [False]

    async def receive() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}
    return scope, receive


async def call(app: Any, method: str, path: str, query: str = "", body: bytes = b"") -> bytes:
    scope, receive = http(method, path, query, body)
    out: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            out.append(message.get("body", b""))
    await app(scope, receive, send)
    return b"".join(out)


async def main() -> None:
    gw = Gateway(EchoHub, name="echo", allowed_origins=("*",))
    counts = [0]
    waiter: list[asyncio.Future[None] | None] = [None]
    target = [0]
    streams: list[asyncio.Future[None]] = []

    async def sink(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and b"burst" in message.get("body", b""):
            counts[0] += 1
            if counts[0] >= target[0] and waiter[0] and not waiter[0].done():
                waiter[0].set_result(None)

    async def ws_sink(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.send" and "burst" in (message.get("text") or ""):
            counts[0] += 1
            if counts[0] >= target[0] and waiter[0] and not waiter[0].done():
                waiter[0].set_result(None)

    for _ in range(N):
        neg = json.loads(await call(gw, "POST", "/negotiate", "negotiateVersion=1"))
        token = neg["connectionToken"]
        q = f"id={token}"
        if TRANSPORT == "WebSockets":
            inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            inbox.put_nowait({"type": "websocket.connect"})
            inbox.put_nowait({"type": "websocket.receive", "text": '{"protocol":"json","version":1}\x1e'})
            join = json.dumps({"type": 1, "target": "Join", "arguments": ["g"]}) + "\x1e"
            inbox.put_nowait({"type": "websocket.receive", "text": join})
            ws_scope: dict[str, Any] = {"type": "websocket", "path": "/", "raw_path": b"/", "root_path": "",
                                        "query_string": q.encode(),
                     "headers": [(b"host", b"127.0.0.1"), (b"origin", b"http://x.test")], "client": ("127.0.0.1", 5000),
                     "server": ("127.0.0.1", 80), "scheme": "ws", "subprotocols": [], "asgi": {"version": "3.0"}}
            streams.append(asyncio.ensure_future(gw(ws_scope, inbox.get, ws_sink)))
            for _ in range(5):
                await asyncio.sleep(0)
            continue
        if TRANSPORT == "ForeverFrame":
            q2 = q + "&transport=ForeverFrame&frame=f1&origin=http%3A%2F%2Fx.test"
        else:
            q2 = q + "&transport=ServerSentEvents"
        scope, receive = http("GET", "/", q2)
        scope["headers"].append((b"accept", b"text/event-stream"))
        streams.append(asyncio.ensure_future(gw(scope, receive, sink)))
        await asyncio.sleep(0)
        await call(gw, "POST", "/", q, b'{"protocol":"json","version":1}\x1e')
        await call(gw, "POST", "/", q, json.dumps({"type": 1, "target": "Join", "arguments": ["g"]}).encode() + b"\x1e")
    for _ in range(50):
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    times = []
    cpu0 = time.process_time()
    for i in range(M):
        target[0] = counts[0] + N
        done: asyncio.Future[None] = loop.create_future()
        waiter[0] = done
        t0 = time.perf_counter()
        await gw.clients.group("g").send("burst", {"i": i, "t": 1.0})
        await done
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    times.sort()
    print(f"{TRANSPORT} N={N} M={M}: per send median {times[len(times)//2]*1e3:.2f} ms, "
          f"per recipient {times[len(times)//2]/N*1e6:.2f} us, cpu/recipient {cpu/M/N*1e6:.2f} us")
    for s in streams:
        s.cancel()


asyncio.run(main())
