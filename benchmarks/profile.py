"""``python -m benchmarks.profile``: where the server's time goes, sampled with py-spy, for one tree or two.

    python -m benchmarks.profile record --label after                      # this tree's server
    python -m benchmarks.profile record --label before --tree ../old       # another checkout's server
    python -m benchmarks.profile summary benchmarks/results/profiles before after   # Markdown tables

``record`` starts ``benchmarks.server`` (uvicorn h11 + wsproto) from ``--tree`` and drives it with this tree's
load generator (``gateway.client.lean``), so both sides of a comparison get the same load:

- ``idle``: 10,000 WebSockets held; 20 s sampled after 20 s of keep-alive;
- ``fanout``: 100 ``burst`` messages 50 ms apart to a group of 1,000 WebSockets (benchmark C);
- ``lp``: the same fan-out to 1,000 LongPolling clients.

py-spy samples without stopping the process (``--nonblocking``, 200 Hz); each profile is written as folded stacks
(``<label>_<kind>.folded.gz``, readable by speedscope or any flame-graph tool), and the server's CPU over the
profile is printed. py-spy is not a dependency: ``pip install py-spy``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gzip
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .loadgen import Worker
from .run import free_port

ROOT = Path(__file__).resolve().parent
KINDS: dict[str, tuple[str, int, float]] = {
    "idle": ("gateway-ws", 10_000, 20.0),
    "fanout": ("gateway-ws", 1000, 6.0),
    "lp": ("gateway-lp", 1000, 6.0),
}
"""kind -> (target, clients, seconds sampled)."""
TITLES = {
    "idle": "Idle: 10,000 WebSockets held, 20 s",
    "fanout": "Fan-out: 100 messages 50 ms apart to 1,000 WebSockets",
    "lp": "Fan-out: 100 messages 50 ms apart to 1,000 LongPolling clients",
}
LAYERS = ("gateway", "asyncio", "uvicorn", "h11", "wsproto", "starlette", "json")


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def _record(pid: int, port: int, kind: str, out: Path) -> str:
    target, n, seconds = KINDS[kind]
    workers = [Worker(port) for _ in range(2)]
    for worker in workers:
        opened = await worker.open(target, n // 2)
        if opened["failed"]:
            raise RuntimeError(f"{opened['failed']} clients failed to connect: {opened['errors']}")
    spy = ["py-spy", "record", "--nonblocking", "-r", "200", "-f", "raw", "-d", str(int(seconds)),
           "-p", str(pid), "-o", str(out)]
    if kind == "idle":
        await asyncio.sleep(20)
    else:
        for worker in workers:
            await worker.join("profiled", n // 2)
            await worker.fanout_begin(100)
    sampler = await asyncio.create_subprocess_exec(*spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(0.5)
    ticks, start = _cpu_ticks(pid), time.monotonic()
    if kind != "idle":
        url = f"http://127.0.0.1:{port}/bench/fanout?kind=gateway&group=profiled&count=100&interval=0.05"
        await asyncio.to_thread(lambda: urllib.request.urlopen(urllib.request.Request(url, method="POST")).read())
        delivered = sum([(await w.fanout_wait(30))["delivered"] for w in workers])
    await sampler.wait()
    cpu = (_cpu_ticks(pid) - ticks) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - start) * 100
    return f"{kind}: server CPU {cpu:.0f}%" + ("" if kind == "idle" else f", {delivered} delivered")


def record(label: str, tree: Path, kinds: list[str], out: Path) -> None:
    if shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    out.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(tree)}
        server = subprocess.Popen([sys.executable, "-m", "benchmarks.server", "--stack", "h11", "--port", str(port)],
                                  cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            raw = out / f"{label}_{kind}.raw"
            print(asyncio.run(_record(server.pid, port, kind, raw)), file=sys.stderr, flush=True)
            with raw.open("rb") as src, gzip.open(out / f"{label}_{kind}.folded.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            raw.unlink()
        finally:
            server.terminate()
            server.wait(10)


def _layer(frame: str) -> str:
    match = re.search(r"\((\w+)[/.]", frame)
    name = match.group(1) if match else ""
    return "asyncio" if name == "selectors" else name if name in LAYERS else "other"


def _load(path: Path) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """(samples, samples by the leaf frame's layer, samples by their deepest gateway function)."""
    total, leaf, inside = 0, collections.Counter[str](), collections.Counter[str]()
    with gzip.open(path, "rt") as lines:
        folded = lines.read().splitlines()
    for line in folded:
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        leaf[_layer(frames[-1])] += n
        ours = [m for f in frames if (m := re.match(r"(.*?) \((gateway/[^:]+)", f))]
        if ours:  # the deepest gateway frame: the code that works, or calls out to the server stack
            inside[f"{ours[-1].group(2)} {ours[-1].group(1)}"] += n
    return total, leaf, inside


def _cell(top: list[tuple[str, int]], i: int, total: int) -> str:
    if i >= len(top):
        return " | "
    name, n = top[i]
    return f"`{name}` | {n * 100 / total:.0f}%"


def summary(directory: Path, before: str, after: str) -> str:
    lines: list[str] = []
    for kind, title in TITLES.items():
        b, a = _load(directory / f"{before}_{kind}.folded.gz"), _load(directory / f"{after}_{kind}.folded.gz")
        lines += [f"#### {title}", "", f"| leaf frame in | {before} | {after} |", "|---|---:|---:|"]
        lines += [f"| {layer} | {b[1][layer] * 100 / b[0]:.0f}% | {a[1][layer] * 100 / a[0]:.0f}% |"
                  for layer in (*LAYERS, "other")]
        lines += [f"| samples (200 Hz) | {b[0]} | {a[0]} |", ""]
        lines += [f"| | deepest gateway frame ({before}) | share | deepest gateway frame ({after}) | share |",
                  "|---:|---|---:|---|---:|"]
        top_b, top_a = b[2].most_common(6), a[2].most_common(6)
        for i in range(max(len(top_b), len(top_a))):
            lines.append(f"| {i + 1} | {_cell(top_b, i, b[0])} | {_cell(top_a, i, a[0])} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="profile one tree's server under the three loads")
    rec.add_argument("--label", required=True)
    rec.add_argument("--tree", type=Path, default=ROOT.parent)
    rec.add_argument("--kinds", default=",".join(KINDS))
    rec.add_argument("--out", type=Path, default=ROOT / "results" / "profiles")
    summ = sub.add_parser("summary", help="Markdown tables comparing two labels")
    summ.add_argument("directory", type=Path)
    summ.add_argument("before")
    summ.add_argument("after")
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.label, args.tree.resolve(), args.kinds.split(","), args.out)
    else:
        print(summary(args.directory, args.before, args.after))


if __name__ == "__main__":
    main()
