"""The demo application: a job queue whose progress reaches every waiting page, on any transport."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ..admin import Admin
from ..app import DEFAULT_SETTINGS, Gateway
from ..backplane import Backplane, InProcessBackplane
from ..progress import MemoryStore, Progress, ProgressStore, connect
from ..progress.store import LEASE
from ..server import telemetry
from ..server.routing import GatewayRoute
from ..server.settings import Settings
from ..transports import TRANSPORT_NAMES
from .conditions import Conditions, Delay
from .hubs import ChatHub, EchoHub, JobsHub
from .jobs import JobQueue, MemoryQueue, RedisQueue, Runner

MAX_STEPS = 200
MAX_STEP_MS = 10_000
MAX_JOB_MS = 600_000  # steps x step_ms: a job holds a worker for at most 10 minutes
MAX_QUEUED = 100  # jobs waiting for a worker; past it, POST /jobs is 503
MAX_JSON = 4096  # bytes of a POST /jobs body


def _page(name: str) -> str:
    return resources.files("gateway.demo").joinpath(f"pages/{name}").read_text("utf-8")


def _int(body: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{key} must be an integer from {low} to {high}")
    return value


class BadRequest(Exception):
    """A demo request refused: its status and error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _json_body(request: Request, timeout: float) -> Any:
    """The request's JSON body: at most MAX_JSON bytes, arriving within ``timeout`` s (413, 408, 400 otherwise)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_JSON:
                    raise BadRequest(413, f"the body exceeds {MAX_JSON} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(408, "the request body took too long") from None
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise BadRequest(400, "the body is not JSON") from None


def _job_request(body: Any) -> tuple[int, int, int | None]:
    """(steps, step_ms, fail_at) from a POST /jobs body; ValueError says what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    steps = _int(body, "steps", 10, 1, MAX_STEPS)
    step_ms = _int(body, "step_ms", 500, 0, MAX_STEP_MS)
    fail_at = _int(body, "fail_at", None, 1, MAX_STEPS)
    assert steps is not None and step_ms is not None
    if steps * step_ms > MAX_JOB_MS:
        raise ValueError(f"steps x step_ms must be at most {MAX_JOB_MS} ms")
    return steps, step_ms, fail_at


class Demo:
    """The demo's parts (backplane, progress store, job queue and runner, the three gateways) and its HTTP
    handlers."""

    def __init__(self, options: dict[str, Any], job_workers: int, body_timeout: float,
                 redis_url: str | None = None, queue: str = "inprocess", lease: float = LEASE) -> None:
        self.body_timeout = body_timeout
        self.backplane: Backplane = options["backplane"]
        self.store: ProgressStore
        self.queue: JobQueue
        if redis_url:
            from ..backplane.redis import RedisBackplane
            from ..progress.redis import RedisStore

            store = self.store = RedisStore(redis_url, hub="jobs", lease=lease)
            if isinstance(self.backplane, RedisBackplane):  # pages catch up on what a Redis outage held back
                self.backplane.on_recovered(store.recover)
            progress = connect(redis_url, hub="jobs")
            self.queue = queue_for(queue, redis_url, progress, self.store)
        else:
            memory = MemoryStore(lease=lease)
            self.store, self.queue, progress = memory, MemoryQueue(), connect(store=memory)
        self.runner = Runner(self.queue, progress, workers=job_workers)
        self.jobs = Gateway(JobsHub.bind(self.store), name="jobs", **options)
        self.store.attach(self.jobs.clients)
        self.gateways = (self.jobs, Gateway(EchoHub, name="echo", **options), Gateway(ChatHub, name="chat", **options))
        self.delay = Delay(self.jobs)  # the comparison page's server-side link delay (0: none)
        self.conditions = Conditions(self.jobs, self.delay)
        self.admin = Admin(self.gateways)

    async def start_job(self, request: Request) -> Response:
        try:
            steps, step_ms, fail_at = _job_request(await _json_body(request, self.body_timeout))
        except BadRequest as exc:  # the body was not read to its end: the socket goes with the answer
            return JSONResponse({"error": str(exc)}, exc.status, headers={"Connection": "close"})
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        if await self.queue.size() >= MAX_QUEUED:
            return JSONResponse({"error": "too many jobs are waiting; try again later"}, 503,
                                headers={"Retry-After": "5"})
        job = await self.runner.submit(steps, step_ms, fail_at)
        return JSONResponse({"id": job.id}, 202, headers={"Location": f"/jobs/{job.id}"})

    async def get_job(self, request: Request) -> Response:
        snapshot = await self.store.snapshot(request.path_params["job_id"])
        if snapshot is None:
            return JSONResponse({"error": "no such job"}, 404)
        return JSONResponse(snapshot)

    async def cancel_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if await self.store.load(job_id) is None:
            return JSONResponse({"error": "no such job"}, 404)
        return JSONResponse({"cancelled": await self.store.cancel(job_id)})

    async def ready(self, request: Request) -> Response:
        """200 while this process takes new connections; 503 once it drains or stops (balancers take it out)."""
        if any(g.draining or g.stopping for g in self.gateways):
            return JSONResponse({"ready": False, "error": "draining"}, 503)
        return JSONResponse({"ready": True})

    async def metrics(self, request: Request) -> Response:
        """The gateway's metrics in the Prometheus text format (404 when the demo runs without them)."""
        text = telemetry.exposition()
        if text is None:
            return JSONResponse({"error": "metrics are off"}, 404)
        body, media_type = text
        return Response(body, headers={"content-type": media_type})

    async def health(self, request: Request) -> Response:
        """Backplane status, and the connections this process holds per hub."""
        healthy = self.backplane.healthy
        body: dict[str, Any] = {"ok": healthy, "backplane": "in-process" if isinstance(self.backplane,
                                InProcessBackplane) else "redis", "backplane_status": "up" if healthy else "down",
                                "connections": {g.name: len(g.connections) for g in self.gateways}}
        return JSONResponse(body, 200 if healthy else 503)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.backplane.start()
        await self.store.start()
        await self.runner.start()
        yield
        await self.runner.stop()
        for gateway in (*self.gateways, self.admin.hub):
            await gateway.shutdown()
        await self.store.close()
        await self.queue.close()
        await self.backplane.close()

    def routes(self) -> list[BaseRoute]:
        _, echo, chat = self.gateways
        return [
            _page_route("index.html"), _page_route("compare.html"), _page_route("chat.html"),
            Route("/static/{name}", _static),
            Route("/jobs", self.start_job, methods=["POST"]),
            Route("/jobs/{job_id}", self.get_job, methods=["GET"]),
            Route("/jobs/{job_id}/cancel", self.cancel_job, methods=["POST"]),
            Route("/health", self.health),
            Route("/demo/wire", self.conditions.wire), Route("/demo/cut", self.conditions.cut, methods=["POST"]),
            Route("/demo/delay", self.conditions.set_delay, methods=["POST"]),
            GatewayRoute("/hubs/jobs", self.delay), echo.route("/hubs/echo"), chat.route("/hubs/chat"),
            Route("/ready", self.ready),
            Route("/metrics", self.metrics),
            Mount("/admin", self.admin),
        ]


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ("style.css", "common.js"):
        return JSONResponse({"error": "not found"}, 404)
    media = "text/css" if name.endswith(".css") else "text/javascript"
    return Response(_page(name), media_type=media, headers={"Cache-Control": "no-cache"})


def _page_route(name: str) -> Route:
    async def serve(request: Request) -> Response:
        return HTMLResponse(_page(name), headers={"Cache-Control": "no-cache"})
    return Route("/" if name == "index.html" else "/" + name.removesuffix(".html"), serve)


def queue_for(queue: str, redis_url: str, progress: Progress, store: ProgressStore) -> JobQueue:
    """The job queue named ``queue`` on ``redis_url``; for Celery and arq, the store's canceller stops the task."""
    if queue == "celery":
        from .queues import CeleryQueue

        celery = CeleryQueue(redis_url)
        store.canceller = celery.canceller
        return celery
    if queue == "arq":
        from .queues import ArqQueue

        arq = ArqQueue(redis_url, progress)
        store.canceller = arq.canceller
        return arq
    if queue != "inprocess":
        raise ValueError(f"unknown queue {queue!r}; choose from inprocess, celery, arq")
    return RedisQueue(redis_url)


def create_app(
    *, transports: Iterable[str] = TRANSPORT_NAMES, allowed_origins: Iterable[str] = ("*",),
    settings: Settings = DEFAULT_SETTINGS, job_workers: int = 4, redis_url: str | None = None,
    trusted_proxies: Iterable[str] = (), body_timeout: float = 10.0, queue: str = "inprocess", lease: float = LEASE,
    metrics: bool = True,
) -> Starlette:
    """The demo as an ASGI app: ``/``, ``/jobs``, and the hubs under ``/hubs``.

    With ``redis_url`` the hubs share a Redis backplane and the jobs live in Redis, so several
    processes serve the same demo and job workers may run in yet other processes. ``queue`` (with
    ``redis_url``) chooses where ``POST /jobs`` enqueues: ``inprocess`` (the demo's own runner, here or in
    ``gateway worker``), ``celery`` or ``arq`` (their worker processes run the job). ``lease``: seconds
    after which a Processing job with no heartbeat is Failed. ``trusted_proxies`` goes to every hub's
    ``Gateway``; ``body_timeout`` bounds the reading of a ``POST /jobs`` body. ``metrics``
    serves ``GET /metrics`` (it installs the OpenTelemetry SDK with a Prometheus reader: the ``otel`` extra).
    """
    if metrics:
        telemetry.enable_prometheus()
    backplane: Backplane = InProcessBackplane()
    if redis_url:
        from ..backplane.redis import RedisBackplane

        backplane = RedisBackplane(redis_url)
    options: dict[str, Any] = {"transports": tuple(transports), "allowed_origins": tuple(allowed_origins),
                               "settings": settings, "backplane": backplane,
                               "trusted_proxies": tuple(trusted_proxies)}
    if queue != "inprocess" and not redis_url:
        raise ValueError(f"the {queue} queue needs redis_url")
    demo = Demo(options, job_workers, body_timeout, redis_url, queue, lease)
    app = Starlette(routes=demo.routes(), lifespan=demo.lifespan)
    app.state.jobs = demo.runner
    app.state.progress = demo.store
    app.state.gateways = demo.gateways
    return app


def create_app_from_env() -> Starlette:
    """The app ``gateway demo --workers N`` runs in each worker process (options in GATEWAY_DEMO)."""
    options = json.loads(os.environ.get("GATEWAY_DEMO", "{}"))
    level = options.pop("log_level", "info").upper()
    options["settings"] = Settings(**options.pop("settings", {}))
    if not logging.getLogger().handlers:  # a worker process started by uvicorn --workers
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    return create_app(**options)


async def run_worker(redis_url: str, concurrency: int = 4) -> None:
    """A job worker process: takes demo jobs from Redis and publishes their progress to the Redis record, which
    publishes on the Redis backplane (no gateway server in this process)."""
    queue = RedisQueue(redis_url)
    progress = connect(redis_url, hub="jobs")
    runner = Runner(queue, progress, workers=concurrency)
    await runner.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()
        await queue.close()
        progress.close()
