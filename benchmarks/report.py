"""Turns results.json into a Markdown report, the bar verdicts, and PNG plots."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS = {
    "gateway-ws": "gateway WebSockets", "gateway-sse": "gateway ServerSentEvents",
    "gateway-ff": "gateway ForeverFrame", "gateway-lp": "gateway LongPolling",
    "gateway-ws-mp": "gateway WebSockets MessagePack", "gateway-lp-mp": "gateway LongPolling MessagePack",
    "raw-ws": "raw Starlette WebSocket", "raw-sse": "raw Starlette SSE",
    "sio-ws": "python-socketio websocket", "sio-polling": "python-socketio polling",
}
STACK_LABELS = {
    "h11": "uvicorn h11 + wsproto + asyncio",
    "standard": "uvicorn[standard]: httptools + websockets + uvloop",
}


def _f(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _find(rows: list[dict[str, Any]], **where: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in where.items()):
            return row
    return None


# --- bars -----------------------------------------------------------------------------------------


def bars(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each performance bar of the issue, per stack: the figures, the limit, and whether it holds."""
    out: list[dict[str, Any]] = []
    plan = results["meta"]["plan"]

    def ratio(bar: str, stack: str, num: dict[str, Any] | None, den: dict[str, Any] | None, key: str,
              limit: float, what: str) -> None:
        if num is None or den is None or not den.get(key):
            out.append({"bar": bar, "stack": stack, "what": what, "value": None, "limit": limit, "ok": None})
            return
        value = num[key] / den[key]
        out.append({"bar": bar, "stack": stack, "what": what, "value": value, "limit": limit, "ok": value <= limit,
                    "figures": f"{num[key]:.4g} / {den[key]:.4g}"})

    for stack in plan["stacks"]:
        rtt = [r for r in results["rtt"] if r["stack"] == stack]
        ratio("A", stack, _find(rtt, target="gateway-ws"), _find(rtt, target="raw-ws"), "p50_ms", 1.3,
              "WebSockets RTT p50 / raw WebSocket")
        for t in ("gateway-sse", "gateway-ff", "gateway-lp"):
            ratio("A", stack, _find(rtt, target=t), _find(rtt, target="raw-sse"), "p50_ms", 1.5,
                  f"{LABELS[t].split()[1]} RTT p50 / raw SSE")
        for ours, peer in (("gateway-ws", "sio-ws"), ("gateway-lp", "sio-polling")):
            for key in ("p50_ms", "p99_ms"):
                ratio("A", stack, _find(rtt, target=ours), _find(rtt, target=peer), key, 1.0,
                      f"{LABELS[ours].split()[1]} RTT {key[:3]} / {LABELS[peer]}")
        n = 10_000 if 10_000 in plan["idle_ns"] else max(plan["idle_ns"])
        idle = [r for r in results["idle"] if r["stack"] == stack and r["n"] == n]
        ws, raw_ws, sio_ws = (_find(idle, target=t) for t in ("gateway-ws", "raw-ws", "sio-ws"))
        ratio("B", stack, ws, raw_ws, "rss_per_conn", 1.3, f"WebSockets RSS/conn / raw WebSocket at N={n}")
        ratio("B", stack, ws, sio_ws, "rss_per_conn", 0.6, f"WebSockets RSS/conn / python-socketio websocket at N={n}")
        sio_poll = _find(idle, target="sio-polling")
        for t in ("gateway-sse", "gateway-ff", "gateway-lp"):
            ratio("B", stack, _find(idle, target=t), sio_poll, "rss_per_conn", 0.8,
                  f"{LABELS[t].split()[1]} RSS/conn / python-socketio polling at N={n}")
        for ours, peer in (("gateway-ws", "sio-ws"), ("gateway-sse", "sio-polling"), ("gateway-lp", "sio-polling")):
            ratio("B", stack, _find(idle, target=ours), _find(idle, target=peer), "idle_server_cpu_pct", 1.0,
                  f"idle server CPU, {LABELS[ours].split()[1]} / {LABELS[peer]} at N={n}")
        size = 1000 if 1000 in plan["fanout_sizes"] else min(plan["fanout_sizes"])
        fan = [r for r in results["fanout"] if r["stack"] == stack and r["clients"] == size]
        raw_fan, sio_fan = _find(fan, target="raw-ws"), _find(fan, target="sio-ws")
        for t in ("gateway-ws", "gateway-sse", "gateway-ff", "gateway-lp"):
            row = _find(fan, target=t)
            name = LABELS[t].split()[1]
            ratio("C", stack, row, raw_fan, "p99_ms", 2.0, f"{name} fan-out p99 / raw WebSocket ({size})")
            peer_row = sio_fan if t == "gateway-ws" else _find(fan, target="sio-polling")
            peer_name = LABELS["sio-ws" if t == "gateway-ws" else "sio-polling"]
            ratio("C", stack, row, peer_row, "p99_ms", 0.3, f"{name} fan-out p99 / {peer_name} ({size})")
            if row is not None:
                out.append({"bar": "C", "stack": stack, "what": f"{LABELS[t].split()[1]} delivered ({size})",
                            "value": row["delivered"], "limit": row["expected"],
                            "ok": row["delivered"] == row["expected"] and row["out_of_order"] == 0,
                            "figures": f"{row['delivered']}/{row['expected']}"})
    for row in results["hold"]:
        ok = row["alive"] == row["n"] and row["answered"] == row["n"] and row["failed"] == 0
        out.append({"bar": "B", "stack": row["stack"], "value": row["alive"], "limit": row["n"], "ok": ok,
                    "what": f"hold {row['n']} idle {LABELS[row['target']].split()[1]} for {row['hold_s']:.0f} s",
                    "figures": f"{row['alive']} alive, {row['answered']} answered"})
    return out


BEFORE = "1d7c2dc (2026-11-23)"
"""The run the second round of bars was set against; its figures are ``Round2.before``."""


@dataclass(frozen=True)
class Round2:
    """One bar of the second performance round: ``key`` of ``target`` over ``key`` of ``versus``, at most ``limit``."""

    what: str
    section: str  # rtt, idle or fanout
    target: str
    versus: str
    key: str
    limit: float
    size: int | None  # idle N or fan-out clients
    before: tuple[float, float]  # (h11, standard) at BEFORE


ROUND2 = (
    Round2("idle server CPU at 10,000, WebSockets / raw WebSocket", "idle", "gateway-ws", "raw-ws",
           "idle_server_cpu_pct", 2.0, 10_000, (6.11, 5.66)),
    Round2("fan-out to 10,000 p99, WebSockets / raw WebSocket", "fanout", "gateway-ws", "raw-ws", "p99_ms", 2.0,
           10_000, (5.08, 6.67)),
    Round2("fan-out to 1,000 p99, WebSockets / raw WebSocket", "fanout", "gateway-ws", "raw-ws", "p99_ms", 1.5,
           1000, (1.63, 1.45)),
    Round2("fan-out to 1,000 p99, ServerSentEvents / raw WebSocket", "fanout", "gateway-sse", "raw-ws", "p99_ms",
           1.5, 1000, (1.84, 1.31)),
    Round2("fan-out to 1,000 p99, ForeverFrame / raw WebSocket", "fanout", "gateway-ff", "raw-ws", "p99_ms", 1.5,
           1000, (1.94, 1.42)),
    Round2("fan-out to 1,000 p99, LongPolling / raw WebSocket", "fanout", "gateway-lp", "raw-ws", "p99_ms", 5.0,
           1000, (14.24, 12.15)),
    Round2("fan-out to 1,000 p99, LongPolling / python-socketio polling", "fanout", "gateway-lp", "sio-polling",
           "p99_ms", 0.5, 1000, (0.90, 1.24)),
    Round2("RTT p50, WebSockets / raw WebSocket", "rtt", "gateway-ws", "raw-ws", "p50_ms", 1.3, None, (1.46, 1.44)),
    Round2("RTT p99, WebSockets / raw WebSocket", "rtt", "gateway-ws", "raw-ws", "p99_ms", 1.5, None, (2.01, 1.48)),
    Round2("RTT p50, ServerSentEvents / raw SSE", "rtt", "gateway-sse", "raw-sse", "p50_ms", 1.3, None, (1.28, 1.30)),
    Round2("RTT p50, ForeverFrame / raw SSE", "rtt", "gateway-ff", "raw-sse", "p50_ms", 1.3, None, (1.30, 1.27)),
    Round2("RTT p50, LongPolling / raw SSE", "rtt", "gateway-lp", "raw-sse", "p50_ms", 1.5, None, (1.75, 1.46)),
    Round2("RSS per idle connection at 10,000, WebSockets / raw WebSocket", "idle", "gateway-ws", "raw-ws",
           "rss_per_conn", 1.15, 10_000, (1.19, 1.20)),
    Round2("RSS per idle connection at 10,000, ServerSentEvents / python-socketio polling", "idle", "gateway-sse",
           "sio-polling", "rss_per_conn", 0.7, 10_000, (0.58, 0.58)),
    Round2("RSS per idle connection at 10,000, ForeverFrame / python-socketio polling", "idle", "gateway-ff",
           "sio-polling", "rss_per_conn", 0.7, 10_000, (0.59, 0.60)),
    Round2("RSS per idle connection at 10,000, LongPolling / python-socketio polling", "idle", "gateway-lp",
           "sio-polling", "rss_per_conn", 0.7, 10_000, (0.56, 0.56)),
)
"""The single-process bars of the second round (the 100,000-connection ones are in the scale-out section)."""


def round_two(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each second-round bar this run measured, per stack: before, now, limit, figures, met."""
    out = []
    for stack in results["meta"]["plan"]["stacks"]:
        for bar in ROUND2:
            rows = [r for r in results[bar.section] if r["stack"] == stack]
            if bar.size is not None:
                rows = [r for r in rows if r.get("n", r.get("clients")) == bar.size]
            num, den = _find(rows, target=bar.target), _find(rows, target=bar.versus)
            if num is None or den is None or not den.get(bar.key):
                continue
            value = num[bar.key] / den[bar.key]
            out.append({"stack": stack, "what": bar.what, "limit": bar.limit, "now": value, "ok": value <= bar.limit,
                        "before": bar.before[0 if stack == "h11" else 1],
                        "figures": f"{num[bar.key]:.4g} / {den[bar.key]:.4g}"})
    return out


# --- Markdown -------------------------------------------------------------------------------------


def markdown(results: dict[str, Any], plots: list[str]) -> str:
    meta = results["meta"]
    lines = [f"# Benchmark results ({meta['mode']} mode)", ""]
    lines += [f"Run {meta['started']} at commit `{meta['commit']}`, {meta.get('seconds', 0):.0f} s. "
              f"Machine: {meta['cores']} cores, {meta['memory_gib']} GiB, {meta['platform']}, Python {meta['python']}.",
              "", "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".", ""]
    lines += ["Every target runs on the same uvicorn process per stack, heartbeat 15 s for all (gateway keep-alive "
              "ping, raw endpoints' heartbeat task, Socket.IO `ping_interval=15`). The load generator is "
              "`gateway.client.lean` (h11 + wsproto on asyncio Protocols, uvloop) in separate processes; its CPU% "
              "(100% = one core; the machine has two) is given beside each figure.", ""]
    for stack in meta["plan"]["stacks"]:
        lines += [f"## Stack: {STACK_LABELS.get(stack, stack)}", ""]
        rtt = [r for r in results["rtt"] if r["stack"] == stack]
        if rtt:
            lines += [f"### A. Round trip, one client, {meta['plan']['rtt_count']} sequential echoes "
                      f"after {meta['plan']['rtt_warmup']} warm-up", "",
                      "| target | p50 ms | p99 ms | mean ms | server CPU % | client CPU % |",
                      "|---|---:|---:|---:|---:|---:|"]
            lines += [f"| {LABELS[r['target']]} | {_f(r['p50_ms'], 3)} | {_f(r['p99_ms'], 3)} | "
                      f"{_f(r['mean_ms'], 3)} | "
                      f"{_f(r['server_cpu_pct'], 0)} | {_f(r['client_cpu_pct'], 0)} |" for r in rtt]
            lines.append("")
        idle = [r for r in results["idle"] if r["stack"] == stack]
        if idle:
            lines += ["### B. Held idle connections", "",
                      "| target | N | alive | established in s | RSS/conn KiB | idle server CPU % | "
                      "idle client CPU % | "
                      "client CPU % while establishing |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for r in sorted(idle, key=lambda r: (list(LABELS).index(r["target"]), r["n"])):
                lines.append(
                    f"| {LABELS[r['target']]} | {r['n']} | {r['alive']} | {_f(r['established_s'], 1)} | "
                    f"{_f(r['rss_per_conn'] / 1024, 2)} | {_f(r['idle_server_cpu_pct'], 2)} | "
                    f"{_f(r['idle_client_cpu_pct'], 2)} | {_f(r['establish_client_cpu_pct'], 0)} |")
            lines.append("")
        fan = [r for r in results["fanout"] if r["stack"] == stack]
        if fan:
            lines += [f"### C. Fan-out: {meta['plan']['fanout_count']} messages 50 ms apart to a group", "",
                      "| target | clients | delivered | p50 ms | p99 ms | max ms | server CPU % | "
                      "client CPU % (max one) |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for r in sorted(fan, key=lambda r: (r["clients"], list(LABELS).index(r["target"]))):
                lines.append(
                    f"| {LABELS[r['target']]} | {r['clients']} | {r['delivered']}/{r['expected']} | "
                    f"{_f(r['p50_ms'], 1)} |"
                    f" {_f(r['p99_ms'], 1)} | {_f(r['max_ms'], 1)} | {_f(r['server_cpu_pct'], 0)} | "
                    f"{_f(r['client_cpu_pct'], 0)} ({_f(r['client_cpu_max_pct'], 0)}) |")
            lines.append("")
    if results["hold"]:
        lines += ["## Holding idle connections", "",
                  "| stack | target | N | alive at the end | answered an echo | server counts | held s | "
                  "RSS/conn KiB | idle server CPU % | established in s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['stack']} | {LABELS[r['target']]} | {r['n']} | {r['alive']} | {r['answered']} | "
                  f"{r['server_count']} | {r['hold_s']:.0f} | {_f(r['rss_per_conn'] / 1024, 2)} | "
                  f"{_f(r['idle_server_cpu_pct'], 2)} | {_f(r['established_s'], 1)} |" for r in results["hold"]]
        lines.append("")
    verdicts = bars(results)
    if verdicts:
        lines += ["## Bars", "", "| bar | stack | what | value | limit | figures | verdict |",
                  "|---|---|---|---:|---:|---|---|"]
        for v in verdicts:
            if v["ok"] is None:
                continue  # a target this run did not measure
            verdict = "n/a" if v["ok"] is None else "pass" if v["ok"] else "**FAIL**"
            value = v["value"] if isinstance(v["value"], int) else _f(v["value"], 2)
            lines.append(f"| {v['bar']} | {v['stack']} | {v['what']} | {value} | {v['limit']} | "
                         f"{v.get('figures', '')} | {verdict} |")
        lines.append("")
    second = round_two(results)
    if second:
        lines += ["## Bars, round two", "", f"Before: the full run at {BEFORE}. The bars at 100,000 connections are "
                  "in the scale-out section.", "",
                  "| stack | bar | before | now | limit | figures now | met |", "|---|---|---:|---:|---:|---|---|"]
        lines += [f"| {v['stack']} | {v['what']} | {v['before']:.2f} | {v['now']:.2f} | {v['limit']:g} | "
                  f"{v['figures']} | {'yes' if v['ok'] else '**no**'} |" for v in second]
        lines.append("")
    if results["skipped"]:
        lines += ["## Skipped or failed steps", ""] + [f"- {s}" for s in results["skipped"]] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------------


def plot(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    stacks = results["meta"]["plan"]["stacks"]
    if results["rtt"]:
        fig, axes = plt.subplots(1, len(stacks), figsize=(7 * len(stacks), 5), squeeze=False)
        for ax, stack in zip(axes[0], stacks, strict=True):
            for row in (r for r in results["rtt"] if r["stack"] == stack):
                samples = row["samples"]
                ys = [(i + 1) / len(samples) for i in range(len(samples))]
                ax.plot(samples, ys, label=LABELS[row["target"]], linestyle="-" if "gateway" in row["target"] else "--")
            ax.set_xscale("log")
            ax.set_xlabel("round trip, ms (log)")
            ax.set_ylabel("fraction of round trips")
            ax.set_title(f"A. Echo RTT CDF — {stack}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        paths.append(_save(fig, out / "rtt_cdf.png"))
    if results["idle"]:
        fig, axes = plt.subplots(1, len(stacks), figsize=(7 * len(stacks), 5), squeeze=False)
        for ax, stack in zip(axes[0], stacks, strict=True):
            for target in LABELS:
                rows = sorted((r for r in results["idle"] if r["stack"] == stack and r["target"] == target),
                              key=lambda r: r["n"])
                if rows:
                    ax.plot([r["n"] for r in rows], [r["rss_per_conn"] / 1024 for r in rows], marker="o",
                            label=LABELS[target], linestyle="-" if "gateway" in target else "--")
            ax.set_xscale("log")
            ax.set_xlabel("held idle connections N (log)")
            ax.set_ylabel("server RSS growth per connection, KiB")
            ax.set_title(f"B. Memory per connection — {stack}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        paths.append(_save(fig, out / "rss_per_connection.png"))
    sizes = sorted({r["clients"] for r in results["fanout"]})
    for size in sizes:
        fig, axes = plt.subplots(1, len(stacks), figsize=(7 * len(stacks), 5), squeeze=False)
        for ax, stack in zip(axes[0], stacks, strict=True):
            rows = [r for r in results["fanout"] if r["stack"] == stack and r["clients"] == size and r["latencies"]]
            if rows:
                ax.boxplot([r["latencies"] for r in rows], vert=False, whis=(1, 99), showfliers=False)
                ax.set_yticks(range(1, len(rows) + 1), [LABELS[r["target"]] for r in rows], fontsize=8)
                ax.set_xscale("log")
            ax.set_xlabel("per-recipient latency, ms (log; box 25-75%, whiskers 1-99%)")
            ax.set_title(f"C. Fan-out to {size} clients — {stack}")
            ax.grid(True, which="both", axis="x", alpha=0.3)
        paths.append(_save(fig, out / f"fanout_{size}.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write(results: dict[str, Any], out: Path, *, markdown_path: Path | None = None) -> Path:
    """Plots into ``out``, and the report to ``markdown_path`` (default ``out/report.md``)."""
    plots = plot(results, out)
    target = markdown_path or out / "report.md"
    relative = [str(p.relative_to(target.parent)) if p.is_relative_to(target.parent) else str(p) for p in plots]
    text = markdown(results, relative)
    if target.exists():  # the sections other benchmarks wrote (scale-out, conditions, ...) stay, after this report
        text = text.rstrip("\n") + "\n" + "".join(f"\n## {body.rstrip()}\n" for body in kept_sections(
            target.read_text(), text))
    target.write_text(text)
    return target


def kept_sections(old: str, new: str) -> list[str]:
    """The ``## `` sections of ``old`` (heading line and body) whose heading ``new`` does not have."""
    headings = {part.split("\n", 1)[0] for part in new.split("\n## ")[1:]}
    return [part for part in old.split("\n## ")[1:] if part.split("\n", 1)[0] not in headings]
