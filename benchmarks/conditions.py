"""``python -m benchmarks conditions [--quick|--full]``: each transport through an emulated network.

The project's Python client (stateful reconnect on) reaches the demo's echo hub on an in-process uvicorn (h11 +
wsproto) through ``benchmarks.link``. Per profile and transport: time to connect (``start()``), time from
``start()`` to the first pushed message, the latency of messages sent every 100 ms (``EchoPush`` there and back),
bytes each way and HTTP requests per message (the server's wire accounting), the time from each cut to the next
message, and messages lost and duplicated (both must be 0). Writes ``benchmarks/results/conditions/`` (JSON,
Markdown, a plot) and replaces the "Network conditions" section of ``RESULTS.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from gateway import Gateway
from gateway.client import HubClient
from gateway.demo.hubs import EchoHub
from gateway.transports import TRANSPORT_NAMES

from .link import Link, Profile

ROOT = Path(__file__).resolve().parent
PROFILES = (
    Profile("loopback"),
    Profile("50 ms RTT / 20 Mbit", rtt=0.05, jitter=0.005, mbit=20),
    Profile("300 ms RTT / 1.5 Mbit", rtt=0.3, jitter=0.03, mbit=1.5),
    Profile("cuts every 10 s", rtt=0.05, jitter=0.005, mbit=20, cut_every=10.0),
)
INTERVAL = 0.1  # seconds between messages
SECTION = "## Network conditions"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(gateway: Gateway, port: int, profile: Profile, transport: str, seconds: float) -> dict[str, Any]:
    """One transport through one link for ``seconds`` of messages."""
    link = Link(profile, port)
    await link.start()
    loop = asyncio.get_running_loop()
    client = HubClient(f"http://127.0.0.1:{link.port}/hub", transport=transport, stateful_reconnect=True,
                       resume_timeout=30.0)
    arrivals: list[tuple[int, float, float]] = []  # (i, sent, arrived)
    client.on("echo", lambda value: arrivals.append((value[0], value[1], loop.time())))
    begun = loop.time()
    await client.start()
    connected = loop.time() - begun
    await client.send("EchoPush", [0, loop.time()])
    while not arrivals:
        await asyncio.sleep(0.005)
    first = loop.time() - begun
    before = gateway.connections.get(client.connection_id or "")
    sends: list[asyncio.Future[None]] = []
    sent = 1
    end = loop.time() + seconds
    while loop.time() < end:
        await asyncio.sleep(INTERVAL)  # a send does not wait for the one before (a POST may take a round trip)
        sends.append(asyncio.ensure_future(client.send("EchoPush", [sent, loop.time()])))
        sent += 1
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while len({a[0] for a in arrivals}) < sent:
                await asyncio.sleep(0.05)
    after = gateway.connections.get(client.connection_id or "")
    await asyncio.gather(*sends, return_exceptions=True)  # a send that failed shows as a lost message
    await client.close()
    await link.stop()
    return _figures(profile, transport, (connected, first), arrivals, sent, link.cuts, (before, after))


def _figures(
    profile: Profile, transport: str, times: tuple[float, float], arrivals: list[tuple[int, float, float]],
    sent: int, cuts: list[float], infos: tuple[Any, Any],
) -> dict[str, Any]:
    """The figures of one run; bytes and requests per message are over the messages after the first one."""
    ids = [a[0] for a in arrivals]
    latencies = [(arrived - at) * 1000 for _, at, arrived in arrivals]
    # from a cut to the arrival of the first message sent after it
    recoveries = [(min((a[2] for a in arrivals if a[1] > cut), default=cut) - cut) * 1000 for cut in cuts]
    before, after = infos
    delivered = max(1, len(set(ids)) - 1)
    wire = None if before is None or after is None else {
        name: (getattr(after.wire, name) - getattr(before.wire, name)) / delivered
        for name in ("bytes_out", "bytes_in", "requests")}
    return {
        "profile": profile.name, "transport": transport, "sent": sent,
        "connect_ms": times[0] * 1000, "first_message_ms": times[1] * 1000,
        "latency_p50_ms": _quantile(latencies, 0.5), "latency_p99_ms": _quantile(latencies, 0.99),
        "down_bytes_per_message": wire["bytes_out"] if wire else None,
        "up_bytes_per_message": wire["bytes_in"] if wire else None,
        "requests_per_message": wire["requests"] if wire else None,
        "cuts": len(cuts), "recovery_ms": recoveries,
        "lost": sent - len(set(ids)), "duplicated": len(ids) - len(set(ids)),
        "latencies": latencies[::max(1, len(latencies) // 200)],
    }


async def run(quick: bool) -> list[dict[str, Any]]:
    gateway = Gateway(EchoHub, name="hub")
    port = _port()
    app = Starlette(routes=[gateway.route("/hub")])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http="h11", ws="wsproto",
                                           log_level="warning", lifespan="off"))
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    results = []
    try:
        for profile in PROFILES:
            seconds = (21.0 if profile.cut_every else 5.0) if quick else (61.0 if profile.cut_every else 20.0)
            for transport in TRANSPORT_NAMES:
                started = time.monotonic()
                figures = await measure(gateway, port, profile, transport, seconds)
                results.append(figures)
                print(f"[{time.monotonic() - started:5.1f}s] {profile.name} {transport}: "
                      f"first {_ms(figures['first_message_ms'])}, p50 {_ms(figures['latency_p50_ms'])}, "
                      f"lost {figures['lost']}, duplicated {figures['duplicated']}", file=sys.stderr)
    finally:
        server.should_exit = True
        await serving
    return results


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _n(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(results: list[dict[str, Any]], mode: str) -> str:
    lines = [SECTION, "", f"`python -m benchmarks conditions --{mode}`: the Python client (stateful reconnect) to the",
             "echo hub through `benchmarks/link.py`, one message every 100 ms (`EchoPush` there and back: latency is",
             "a round trip). Connect: `start()`; first message: from `start()` to the first push's arrival. Bytes",
             "and requests per message: the server's wire accounting (headers, framing, polls, pings, acks, resumes)",
             "after the first message, per message delivered. Recovery: from a cut to the arrival of the first",
             "message sent after it (a message is sent every 100 ms, so up to 100 ms of it is waiting to send).", ""]
    lines += ["| profile | transport | connect | first message | p50 | p99 | ↓ B/msg | ↑ B/msg | req/msg | "
              "recovery | lost | dup |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        recovery = ", ".join(_ms(ms) for ms in r["recovery_ms"]) or "–"
        lines.append(f"| {r['profile']} | {r['transport']} | {_ms(r['connect_ms'])} | {_ms(r['first_message_ms'])} | "
                     f"{_ms(r['latency_p50_ms'])} | {_ms(r['latency_p99_ms'])} | {_n(r['down_bytes_per_message'])} | "
                     f"{_n(r['up_bytes_per_message'])} | {_n(r['requests_per_message'], 2)} | {recovery} | "
                     f"{r['lost']} | {r['duplicated']} |")
    lines += ["", "![latency per profile and transport](../docs/images/conditions.png)", ""]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = list(dict.fromkeys(r["profile"] for r in results))
    fig, axes = plt.subplots(1, len(profiles), figsize=(4 * len(profiles), 3.6), sharey=False)
    for ax, profile in zip(axes, profiles, strict=True):
        rows = [r for r in results if r["profile"] == profile]
        ax.boxplot([r["latencies"] or [0] for r in rows], showfliers=False)
        ax.set_xticks(range(1, len(rows) + 1), [r["transport"].replace("ServerSentEvents", "SSE") for r in rows],
                      rotation=30, fontsize=8)
        ax.set_title(profile, fontsize=10)
        ax.set_ylabel("message latency, ms (there and back)", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def replace_section(text: str, section: str) -> str:
    """``text`` with its "Network conditions" section replaced by ``section`` (or added at the end)."""
    start = text.find(SECTION)
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section
    end = text.find("\n## ", start + len(SECTION))
    return text[:start] + section + ("" if end < 0 else text[end:])


def main(argv: list[str]) -> int:
    mode = "full" if "--full" in argv else "quick"
    logging.getLogger("gateway").setLevel(logging.WARNING)
    started = time.monotonic()
    results = asyncio.run(run(mode == "quick"))
    out = ROOT / "results" / "conditions"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    section = markdown(results, mode)
    (out / "report.md").write_text(section)
    plot(results, ROOT.parent / "docs" / "images" / "conditions.png")
    results_md = ROOT / "RESULTS.md"
    results_md.write_text(replace_section(results_md.read_text(), section))
    print(section)
    print(f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0
