"""The ``gateway`` command: ``gateway demo`` serves the demo."""

from __future__ import annotations

import argparse
import logging

from .transports import TRANSPORT_NAMES


def _transports(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in TRANSPORT_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(TRANSPORT_NAMES)}")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gateway", description="A realtime transport negotiation gateway.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="serve the demo (job progress, transport comparison, chat)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--transports", type=_transports, default=TRANSPORT_NAMES,
                      help="comma-separated, in priority order (default: %(default)s)")
    demo.add_argument("--allow-origin", action="append", dest="origins", metavar="ORIGIN",
                      help="an origin allowed to use the hubs from another page (repeatable; default: any)")
    demo.add_argument("--poll-timeout", type=float, default=20.0, help="long-poll hold time in seconds")
    demo.add_argument("--workers", type=int, default=4, help="job worker pool size")
    demo.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    import uvicorn

    from .demo.app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(transports=args.transports, allowed_origins=args.origins or ("*",),
                     poll_timeout=args.poll_timeout, workers=args.workers)
    print(f"gateway demo on http://{args.host}:{args.port}/  (transports: {', '.join(args.transports)})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, http="h11", ws="wsproto", log_level=args.log_level,
                timeout_graceful_shutdown=2, access_log=False)
