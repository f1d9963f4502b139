"""The server under test: every target in one ASGI app on one uvicorn process.

- ``/hubs/echo``: the gateway (the demo's ``EchoHub``), all four transports, default 15 s keep-alive.
- ``/raw/ws``, ``/raw/sse``: bare Starlette endpoints, the floor. Text is echoed back; ``join:G`` joins
  a group; one global task sends a heartbeat to every connection each 15 s.
- ``/socket.io/``: python-socketio 5 (``ping_interval=15``), events ``echo`` (acked with its argument)
  and ``join``.
- ``/bench/fanout``: starts a broadcast of ``count`` ``burst`` messages ``{"i", "t"}`` to a group of one
  target, ``interval`` seconds apart; ``/bench/stats``: connection counts per target.

Run: ``python -m benchmarks.server --stack h11|standard --port P``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import Gateway
from gateway.demo.hubs import EchoHub
from gateway.server import telemetry

HEARTBEAT = 15.0
SCRAPE_INTERVAL = 5.0
STACKS: dict[str, dict[str, Any]] = {
    "h11": {"http": "h11", "ws": "wsproto", "loop": "asyncio"},
    "standard": {"http": "httptools", "ws": "auto", "loop": "uvloop"},
}
"""The two uvicorn stacks: pure Python, and uvicorn[standard] (httptools, websockets, uvloop)."""

SSE_HEADERS = {"cache-control": "no-cache, no-store, no-transform", "x-accel-buffering": "no"}


class Raw:
    """The floor: what a Starlette user writes by hand for a WebSocket echo and an SSE stream."""

    def __init__(self) -> None:
        self.ws: set[WebSocket] = set()
        self.sse: dict[str, asyncio.Queue[bytes]] = {}
        self.ws_groups: dict[str, set[WebSocket]] = {}
        self.sse_groups: dict[str, set[str]] = {}

    async def websocket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.ws.add(websocket)
        try:
            while True:
                text = await websocket.receive_text()
                if text.startswith("join:"):
                    self.ws_groups.setdefault(text[5:], set()).add(websocket)
                    text = "joined"
                await websocket.send_text(text)
        except WebSocketDisconnect:
            pass
        finally:
            self.ws.discard(websocket)
            for members in self.ws_groups.values():
                members.discard(websocket)

    async def sse_stream(self, request: Request) -> Response:
        cid = request.query_params.get("id", "")
        if not cid or cid in self.sse:
            return JSONResponse({"error": "bad id"}, 400)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.sse[cid] = queue

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b":\n\n"
                while True:
                    yield await queue.get()
            finally:
                self.sse.pop(cid, None)
                for members in self.sse_groups.values():
                    members.discard(cid)

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    async def sse_post(self, request: Request) -> Response:
        queue = self.sse.get(request.query_params.get("id", ""))
        if queue is None:
            return JSONResponse({"error": "no such stream"}, 404)
        queue.put_nowait(b"data: " + await request.body() + b"\n\n")
        return Response(b"")

    async def sse_join(self, request: Request) -> Response:
        cid = request.query_params.get("id", "")
        if cid not in self.sse:
            return JSONResponse({"error": "no such stream"}, 404)
        self.sse_groups.setdefault((await request.body()).decode(), set()).add(cid)
        return Response(b"")

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            for websocket in list(self.ws):
                with contextlib.suppress(Exception):
                    await websocket.send_text("ping")
            for queue in list(self.sse.values()):
                queue.put_nowait(b":\n\n")

    async def broadcast_ws(self, group: str, text: str) -> None:
        for websocket in list(self.ws_groups.get(group, ())):
            with contextlib.suppress(Exception):
                await websocket.send_text(text)

    async def broadcast_sse(self, group: str, text: str) -> None:
        event = b"data: " + text.encode() + b"\n\n"
        for cid in list(self.sse_groups.get(group, ())):
            queue = self.sse.get(cid)
            if queue is not None:
                queue.put_nowait(event)


def create_app(metrics: bool = False) -> Any:
    """Every target on one app; with ``metrics`` the OpenTelemetry SDK collects the gateway's metrics, which
    ``GET /metrics`` serves and which are scraped every ``SCRAPE_INTERVAL`` seconds (as a Prometheus would)."""
    if metrics:
        telemetry.enable_prometheus()
    gateway = Gateway(EchoHub, name="echo", allowed_origins=("*",))
    raw = Raw()
    sio = socketio.AsyncServer(
        async_mode="asgi", ping_interval=HEARTBEAT, ping_timeout=20, cors_allowed_origins="*",
        logger=False, engineio_logger=False,
    )
    tasks: set[asyncio.Task[None]] = set()
    fanouts: list[dict[str, Any]] = []

    @sio.on("echo")  # type: ignore[untyped-decorator]
    async def sio_echo(sid: str, value: Any) -> Any:
        return value

    @sio.on("join")  # type: ignore[untyped-decorator]
    async def sio_join(sid: str, group: str) -> bool:
        await sio.enter_room(sid, str(group))
        return True

    async def send_burst(kind: str, group: str, data: dict[str, Any]) -> None:
        if kind == "gateway":
            await gateway.clients.group(group).send("burst", data)
        elif kind == "sio":
            await sio.emit("burst", data, room=group)
        elif kind == "raw-ws":
            await raw.broadcast_ws(group, json.dumps(data, separators=(",", ":")))
        elif kind == "raw-sse":
            await raw.broadcast_sse(group, json.dumps(data, separators=(",", ":")))

    async def run_fanout(kind: str, group: str, count: int, interval: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        calls: list[float] = []
        for i in range(1, count + 1):
            delay = start + (i - 1) * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            t0 = loop.time()
            await send_burst(kind, group, {"i": i, "t": time.time()})
            calls.append(loop.time() - t0)
        fanouts.append({"kind": kind, "group": group, "count": count, "seconds": loop.time() - start,
                        "call_max": max(calls), "call_mean": sum(calls) / len(calls)})

    async def fanout(request: Request) -> Response:
        q = request.query_params
        kind, group = q.get("kind", ""), q.get("group", "")
        count, interval = min(int(q.get("count", "100")), 10_000), float(q.get("interval", "0.05"))
        if kind not in ("gateway", "sio", "raw-ws", "raw-sse") or not group:
            return JSONResponse({"error": "kind and group are required"}, 400)
        task = asyncio.ensure_future(run_fanout(kind, group, count, interval))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return JSONResponse({"started": True}, 202)

    async def stats(request: Request) -> Response:
        states: dict[str, int] = {}
        for conn in gateway.registry:
            states[conn.core.state.value] = states.get(conn.core.state.value, 0) + 1
        return JSONResponse({
            "pid": os.getpid(), "gateway": len(gateway.registry), "gateway_states": states,
            "raw_ws": len(raw.ws), "raw_sse": len(raw.sse), "sio": len(sio.eio.sockets),
            "fanouts": fanouts,
        })

    async def prometheus(request: Request) -> Response:
        text = telemetry.exposition()
        return Response(status_code=404) if text is None else Response(text[0], media_type=text[1])

    async def scrape() -> None:
        while True:
            await asyncio.sleep(SCRAPE_INTERVAL)
            telemetry.exposition()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        beat = asyncio.ensure_future(raw.heartbeat())
        scraper = asyncio.ensure_future(scrape()) if metrics else None
        yield
        beat.cancel()
        if scraper is not None:
            scraper.cancel()
        await gateway.shutdown()

    routes = [
        gateway.route("/hubs/echo"),
        WebSocketRoute("/raw/ws", raw.websocket),
        Route("/raw/sse", raw.sse_stream, methods=["GET"]),
        Route("/raw/sse", raw.sse_post, methods=["POST"]),
        Route("/raw/sse/join", raw.sse_join, methods=["POST"]),
        Route("/bench/fanout", fanout, methods=["POST"]),
        Route("/bench/stats", stats, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server")
    parser.add_argument("--stack", choices=sorted(STACKS), default="h11")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--metrics", action="store_true", help="collect the gateway's metrics (OpenTelemetry SDK)")
    args = parser.parse_args(argv)

    import uvicorn

    uvicorn.run(
        create_app(args.metrics), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
        ws_ping_interval=None, timeout_keep_alive=120, backlog=4096, timeout_graceful_shutdown=2,
        **STACKS[args.stack],
    )


if __name__ == "__main__":
    main()
