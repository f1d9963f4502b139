"""Idle cost side by side: server CPU while N connections of each target sit idle, over whole heartbeats.

``python -m benchmarks.idle --n 5000 --window 30 --targets gateway-ws,raw-ws`` starts one server and its load
generators per target (the harness of ``benchmarks.run``), opens N clients, lets them settle, then reads the
server's CPU over ``window`` seconds (two 15 s heartbeats by default, so every connection pings and is pinged
the same number of times on every target). One JSON line per target goes to stdout.

To compare two trees in one sitting, run it from each with ``PYTHONPATH=<tree>`` and ``cwd=<tree>``, interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .run import Fleet


async def measure(stack: str, target: str, n: int, window: float, workers: int, settle: float) -> dict[str, Any]:
    """Open ``n`` clients of ``target``, wait ``settle`` s, and meter ``window`` s of idleness."""
    fleet = await Fleet.start(stack, workers)
    try:
        answers = await fleet.all(600, "open", [{"n": k} for k in fleet.split(n)], target=target)
        await asyncio.sleep(settle)
        meter = fleet.meter()
        await asyncio.sleep(window)
        load = meter.read()
        alive = sum(a["alive"] for a in await fleet.all(60, "alive"))
        return {"stack": stack, "target": target, "n": n, "alive": alive,
                "failed": sum(a["failed"] for a in answers), "window_s": round(load["wall_s"], 1),
                "server_cpu_pct": round(load["server_cpu_pct"], 2), "client_cpu_pct": round(load["client_cpu_pct"], 2),
                "rss_mb": round(fleet.server.rss() / 2**20, 1)}
    finally:
        await fleet.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=16.0, help="seconds after opening, before metering")
    parser.add_argument("--targets", default="gateway-ws,raw-ws")
    parser.add_argument("--stack", default="h11")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    for target in args.targets.split(","):
        row = asyncio.run(measure(args.stack, target, args.n, args.window, args.workers, args.settle))
        print(json.dumps(row), flush=True)
        print(f"{target} N={row['n']}: server {row['server_cpu_pct']:.2f}% CPU, client {row['client_cpu_pct']:.2f}%, "
              f"{row['alive']} alive", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
