"""The cost of the gateway's metrics: round trip and fan-out with the OpenTelemetry SDK collecting them (and a scrape
every 5 s, as a Prometheus would) against the same server with no SDK (the API's no-op instruments), side by side
in one run. Rounds alternate the order (off, on, then on, off) so that drift in the machine's load hits both.

    python -m benchmarks.overhead            # about a minute; --rounds N, --write-results (RESULTS.md section)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .run import FANOUT_INTERVAL, ROOT, Fleet, _floats, _post, percentile

SECTION = "## Metrics on and off"
RTT_TARGETS = ("gateway-ws", "gateway-lp")
FANOUT_TARGET = "gateway-ws"


async def _rtt(fleet: Fleet, target: str, count: int) -> list[float]:
    answer = await fleet.workers[0].call(300, "rtt", target=target, warmup=count // 10, count=count)
    return _floats(answer["samples"])


async def _fanout(fleet: Fleet, clients: int, messages: int) -> dict[str, Any]:
    await fleet.all(300, "open", [{"n": clients}], target=FANOUT_TARGET)
    await fleet.all(300, "join", [{"n": clients}], group="fan")
    await fleet.all(30, "fanout_begin", count=messages)
    meter = fleet.meter()
    path = f"/bench/fanout?kind=gateway&group=fan&count={messages}&interval={FANOUT_INTERVAL}"
    await asyncio.to_thread(_post, fleet.server.port, path)
    answers = await fleet.all(120, "fanout_wait", wait=60)
    load = meter.read()
    latencies = [x * 1000.0 for a in answers for x in _floats(a["latencies"])]
    delivered = sum(a["delivered"] for a in answers)
    return {"latencies": latencies, "delivered": delivered, "expected": clients * messages,
            "server_cpu_pct": load["server_cpu_pct"]}


async def measure(metrics: bool, args: argparse.Namespace) -> dict[str, Any]:
    """One server (metrics on or off) and one load generator: the RTTs, then a fan-out."""
    fleet = await Fleet.start("h11", 1, metrics)
    try:
        rtt = {target: await _rtt(fleet, target, args.rtt_count) for target in RTT_TARGETS}
        return {"rtt": rtt, "fanout": await _fanout(fleet, args.fanout_clients, args.fanout_messages)}
    finally:
        await fleet.stop()


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rtt = {t: sorted(x for r in runs for x in r["rtt"][t]) for t in RTT_TARGETS}
    fan = sorted(x for r in runs for x in r["fanout"]["latencies"])
    return {
        "rtt": {t: {"p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99), "count": len(v)} for t, v in rtt.items()},
        "fanout": {"p50_ms": percentile(fan, 50), "p99_ms": percentile(fan, 99),
                   "delivered": sum(r["fanout"]["delivered"] for r in runs),
                   "expected": sum(r["fanout"]["expected"] for r in runs),
                   "server_cpu_pct": sum(r["fanout"]["server_cpu_pct"] for r in runs) / len(runs)},
    }


def _delta(off: float, on: float) -> str:
    return f"{(on - off) / off * 100:+.1f}%" if off else "n/a"


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    off, on = result["off"], result["on"]
    lines = [
        SECTION, "",
        f"`python -m benchmarks.overhead --rounds {args.rounds}`: one uvicorn (h11 + wsproto) server with the "
        "OpenTelemetry SDK collecting the gateway's metrics (scraped every 5 s) against one with none (the API's "
        f"no-op instruments), {args.rounds} rounds alternating which goes first. RTT: one client, "
        f"{args.rtt_count} sequential echoes per round. Fan-out: {args.fanout_clients} WebSocket clients in a "
        f"group, {args.fanout_messages} messages 50 ms apart per round.", "",
        "| measure | metrics off | metrics on | change |", "|---|---:|---:|---:|",
    ]
    for target in RTT_TARGETS:
        for q in ("p50_ms", "p99_ms"):
            a, b = off["rtt"][target][q], on["rtt"][target][q]
            lines.append(f"| RTT {target} {q[:3]} (ms) | {a:.3f} | {b:.3f} | {_delta(a, b)} |")
    for q in ("p50_ms", "p99_ms"):
        a, b = off["fanout"][q], on["fanout"][q]
        lines.append(f"| fan-out latency {q[:3]} (ms) | {a:.2f} | {b:.2f} | {_delta(a, b)} |")
    a, b = off["fanout"]["server_cpu_pct"], on["fanout"]["server_cpu_pct"]
    lines.append(f"| fan-out server CPU (%) | {a:.0f} | {b:.0f} | {_delta(a, b)} |")
    lines.append(f"| fan-out delivered | {off['fanout']['delivered']}/{off['fanout']['expected']} | "
                 f"{on['fanout']['delivered']}/{on['fanout']['expected']} | |")
    lines += ["", "With the SDK on, no instrument runs per message: messages and bytes are read from the connections "
              "at scrape time, and the per-connection instruments (negotiate, close, resume) run once each. "
              "The differences above are what this machine's noise allows to see: on a shared machine, p99s and "
              "the fan-out p50 move by tens of percent between two runs of the same command, either way."]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = ROOT / "RESULTS.md") -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others as they are."""
    content = path.read_text("utf-8")
    start = content.find(SECTION)
    if start < 0:
        content = content.rstrip("\n") + "\n\n" + text
    else:
        end = content.find("\n## ", start + len(SECTION))
        content = content[:start] + text + (content[end + 1:] if end >= 0 else "")
    path.write_text(content, "utf-8")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for i in range(args.rounds):
        for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
            print(f"round {i + 1}: metrics {mode}", file=sys.stderr, flush=True)
            runs[mode].append(await measure(mode == "on", args))
    return {mode: _merge(r) for mode, r in runs.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rtt-count", type=int, default=1000)
    parser.add_argument("--fanout-clients", type=int, default=500)
    parser.add_argument("--fanout-messages", type=int, default=40)
    parser.add_argument("--write-results", action="store_true", help="replace the section in RESULTS.md")
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(args))
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "overhead.json").write_text(json.dumps(result, indent=1), "utf-8")
    text = report(result, args)
    print(text)
    if args.write_results:
        write_section(text)


if __name__ == "__main__":
    main()
