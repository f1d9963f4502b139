"""The ``gateway`` command: ``gateway demo`` serves the demo; ``gateway worker`` runs job workers."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
from typing import Any

from .demo.workers import QUEUES, start_workers, stop_workers
from .server.settings import Settings
from .transports import TRANSPORT_NAMES

SETTING_TYPES: dict[str, type[float] | type[int]] = {
    name: float if isinstance(value, float) else int for name, value in dataclasses.asdict(Settings()).items()
}


def _transports(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in TRANSPORT_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(TRANSPORT_NAMES)}")
    return names


def _setting(value: str) -> tuple[str, float | int]:
    name, _, raw = value.partition("=")
    kind = SETTING_TYPES.get(name.strip())
    if kind is None:
        raise argparse.ArgumentTypeError(f"unknown setting {name!r}; known: {', '.join(SETTING_TYPES)}")
    try:
        return name.strip(), kind(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} takes a number, not {raw!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="A realtime transport negotiation gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="serve the demo (job progress, transport comparison, chat)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--transports", type=_transports, default=TRANSPORT_NAMES,
                      help="comma-separated, in priority order (default: all four)")
    demo.add_argument("--allow-origin", action="append", dest="origins", metavar="ORIGIN",
                      help="an origin allowed to use the hubs from another page (repeatable; default: any)")
    demo.add_argument("--poll-timeout", type=float, help="long-poll hold time in seconds (the poll_timeout setting)")
    demo.add_argument("--set", type=_setting, action="append", dest="settings", default=[], metavar="NAME=VALUE",
                      help="any gateway setting, e.g. --set keepalive_interval=10 (repeatable; see the README)")
    demo.add_argument("--redis", metavar="URL", help="share a Redis backplane and job store (redis://host:port/db)")
    demo.add_argument("--workers", type=int, default=1, help="server processes on the port (needs --redis if > 1)")
    demo.add_argument("--queue", choices=QUEUES, default="inprocess",
                      help="where jobs run: in the server processes (default), or on Celery or arq (needs --redis)")
    demo.add_argument("--job-workers", type=int, default=4,
                      help="inprocess: job worker tasks per server process (0: none); celery, arq: worker processes "
                           "the demo starts and stops (0: start none, run them by hand)")
    demo.add_argument("--job-lease", type=float, default=10.0, metavar="SECONDS",
                      help="a running job whose worker sent no heartbeat for this long is Failed (default 10; the "
                           "workers the demo starts beat every third of it)")
    demo.add_argument("--trusted-proxy", action="append", dest="trusted_proxies", metavar="ADDRESS",
                      help="a proxy (address or network) whose X-Forwarded-For names the client (repeatable; "
                           "default: none, the rate limits key on the TCP peer)")
    demo.add_argument("--ws-ping-interval", type=float, metavar="SECONDS",
                      help="also send WebSocket Ping frames this often (default: none; SignalR's Ping record "
                           "already keeps connections alive, and some clients read a Ping frame as data)")
    demo.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    demo.add_argument("--no-metrics", action="store_true",
                      help="serve no /metrics (no OpenTelemetry SDK: the instruments stay no-ops)")
    worker = sub.add_parser("worker", help="run job workers that publish progress through Redis")
    worker.add_argument("--redis", metavar="URL", required=True)
    worker.add_argument("--concurrency", type=int, default=4)
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "worker":
        from .demo.app import run_worker

        print(f"gateway worker: {args.concurrency} job workers on {args.redis}", flush=True)
        asyncio.run(run_worker(args.redis, args.concurrency))
        return
    if args.workers > 1 and not args.redis:
        raise SystemExit("gateway demo: --workers > 1 needs --redis (processes share connections through it)")
    if args.job_lease <= 0:
        raise SystemExit("gateway demo: --job-lease takes a positive number of seconds")
    if args.queue != "inprocess" and not args.redis:
        raise SystemExit(f"gateway demo: --queue {args.queue} needs --redis (the queue and the job records live there)")
    workers = start_workers(args.queue, args.job_workers, args.redis, lease=args.job_lease, log_level=args.log_level) \
        if args.queue != "inprocess" and args.job_workers > 0 else []
    try:
        serve_demo(args)
    finally:
        stop_workers(workers)


def serve_demo(args: argparse.Namespace) -> None:
    """Serve the demo with uvicorn until interrupted."""
    import uvicorn

    settings = dict(args.settings)
    if args.poll_timeout is not None:
        settings["poll_timeout"] = args.poll_timeout
    try:
        Settings(**settings)  # refuse a bad value here, not in every worker process
    except ValueError as exc:
        raise SystemExit(f"gateway demo: {exc}") from None
    options = {"transports": list(args.transports), "allowed_origins": args.origins or ["*"],
               "settings": settings, "job_workers": args.job_workers if args.queue == "inprocess" else 0,
               "queue": args.queue, "redis_url": args.redis, "lease": args.job_lease,
               "log_level": args.log_level, "trusted_proxies": args.trusted_proxies or [],
               "metrics": not args.no_metrics}
    os.environ["GATEWAY_DEMO"] = json.dumps(options)
    backplane = f"redis at {args.redis}" if args.redis else "in-process backplane"
    print(f"gateway demo on http://{args.host}:{args.port}/  ({', '.join(args.transports)}; {backplane}; "
          f"{args.workers} process{'es' if args.workers > 1 else ''}; jobs on {args.queue})", flush=True)
    uvicorn.run("gateway.demo.app:create_app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers if args.workers > 1 else None, http="h11", ws="wsproto",
                log_level=args.log_level, timeout_graceful_shutdown=2, access_log=False, **proxy_options(args),
                **ping_options(args))


def ping_options(args: argparse.Namespace) -> dict[str, Any]:
    """uvicorn's WebSocket Ping frames: none unless ``--ws-ping-interval`` asks (uvicorn's own default is 20 s).
    SignalR's Ping record keeps a connection alive already; a frame-level ping only costs a timer per connection,
    and strict clients that read its random payload as data break on it."""
    interval: float | None = args.ws_ping_interval
    return {"ws_ping_interval": interval if interval and interval > 0 else None}


def proxy_options(args: argparse.Namespace) -> dict[str, Any]:
    """uvicorn's proxy headers: off unless ``--trusted-proxy`` names proxies, then trusting those alone."""
    proxies: list[str] = args.trusted_proxies or []
    if not proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(proxies)}
