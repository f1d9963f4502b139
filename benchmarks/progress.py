"""``python -m benchmarks progress [--quick]``: how fast job progress goes from a worker to the pages.

1. Publish rate: steps per second one worker publishes to a real Redis, with the sync publisher (what a Celery
   task uses) and the async one (what an arq job uses), each step awaited in turn.
2. Delay from ``job.step(...)`` in a worker process to the clients, p50 / p99: one real gateway
   (``gateway demo --redis URL --job-workers 0``, uvicorn h11 + wsproto) and the project's lean WebSocket clients
   (``gateway.client.lean``) in a watcher process, with (a) 1,000 clients watching one job and (b) 1,000 jobs each
   watched by one client. The publishing "worker" is this process; each step's message carries its wall clock, and
   a client's delay is its wall clock on receipt minus that. Every client also checks its events' ``seq``: a gap,
   a repeat or an event out of order is counted.

The table is printed and written into ``benchmarks/RESULTS.md`` under "Job progress".
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
HEADING = "## Job progress"


@dataclass(frozen=True)
class Plan:
    publish_steps: int = 2_000
    watchers: int = 1_000
    one_job_steps: int = 100
    many_jobs: int = 1_000
    many_rounds: int = 10
    pace: float = 0.02  # seconds between steps (one job) or between rounds of steps (many jobs)


PLANS = {"quick": Plan(), "full": Plan(publish_steps=20_000, one_job_steps=500, many_rounds=50)}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


# --- 1. publish rate ---------------------------------------------------------------------------------------


def publish_rate_sync(url: str, steps: int) -> float:
    from gateway.progress import connect

    job = connect(url).job(f"bench-sync-{os.getpid()}-{time.time_ns()}")
    job.start(steps, "start")
    began = time.perf_counter()
    for i in range(1, steps + 1):
        job.step(100 * i / steps, "step", step=i)
    took = time.perf_counter() - began
    job.complete(None)
    return steps / took


async def publish_rate_async(url: str, steps: int) -> float:
    from gateway.progress import connect

    job = connect(url).ajob(f"bench-async-{os.getpid()}-{time.time_ns()}")
    await job.start(steps, "start")
    began = time.perf_counter()
    for i in range(1, steps + 1):
        await job.step(100 * i / steps, "step", step=i)
    took = time.perf_counter() - began
    await job.complete(None)
    return steps / took


# --- 2. the watcher process --------------------------------------------------------------------------------


class Watch:
    """The clients of one watcher process, each subscribed to one job; delays and seq faults of what arrives."""

    def __init__(self) -> None:
        self.delays = array.array("f")
        self.faults = 0
        self.last: dict[tuple[int, str], int] = {}
        self.clients: list[Any] = []

    def receiver(self, index: int) -> Any:
        def on_invocation(target: str, arguments: list[Any]) -> None:
            if target.lower() != "progress":
                return
            event = arguments[0]
            key = (index, event["jobId"])
            if event["seq"] <= self.last.get(key, 0):
                return  # at or below what the snapshot held: the contract says drop it
            if event["seq"] != self.last.get(key, 0) + 1:
                self.faults += 1
            self.last[key] = event["seq"]
            if event.get("state") == "Processing" and event.get("message", "").startswith("t="):
                self.delays.append(time.time() - float(event["message"][2:]))
        return on_invocation

    async def open(self, port: int, jobs: list[str]) -> None:
        from gateway.client.lean import WebSocketsLean
        from gateway.client.protocols import HttpPool

        pool = HttpPool("127.0.0.1", port, size=8)
        gate = asyncio.Semaphore(50)

        async def one(index: int, job_id: str) -> None:
            async with gate:
                client = WebSocketsLean("/hubs/jobs", pool, self.receiver(index))
                await client.connect(30)
                snapshot = await client.invoke("Subscribe", job_id)
                self.last[(index, job_id)] = max(self.last.get((index, job_id), 0), snapshot["seq"])
                self.clients.append(client)

        await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))


async def _watcher(port: int) -> None:
    watch = Watch()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "open":
            await watch.open(port, command["jobs"])
            answer: dict[str, Any] = {"opened": len(watch.clients)}
        else:
            deadline = loop.time() + command["wait"]
            while len(watch.delays) < command["expected"] and loop.time() < deadline:
                await asyncio.sleep(0.05)
            answer = {"delays": base64.b64encode(watch.delays.tobytes()).decode(), "faults": watch.faults}
            for client in watch.clients:
                client.close()
            watch = Watch()
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


class Watcher:
    """The controller's end of a watcher process."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.progress", "--watcher", str(port)],
                                     cwd=ROOT.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


# --- 2. the delay runs -------------------------------------------------------------------------------------


def _stats(delays: array.array[float]) -> dict[str, float]:
    ms = sorted(d * 1000 for d in delays)
    if not ms:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {"p50": ms[len(ms) // 2], "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))], "max": ms[-1]}


def delay_run(url: str, port: int, jobs: list[str], watched: list[str], rounds: int, pace: float) -> dict[str, Any]:
    """Start ``jobs``, let the watcher subscribe to ``watched``, publish ``rounds`` steps of every job."""
    from gateway.progress import connect

    progress = connect(url)
    handles = [progress.job(j) for j in jobs]
    for handle in handles:
        handle.start(rounds, "start")
    watcher = Watcher(port)
    try:
        opened = watcher.ask(cmd="open", jobs=watched)["opened"]
        began = time.perf_counter()
        for i in range(1, rounds + 1):
            for handle in handles:
                handle.step(100 * i / rounds, f"t={time.time():.6f}", step=i)
            time.sleep(pace)
        publish_s = time.perf_counter() - began
        answer = watcher.ask(cmd="collect", expected=rounds * len(watched), wait=60)
    finally:
        watcher.stop()
    for handle in handles:
        handle.complete(None)
    delays = array.array("f", base64.b64decode(answer["delays"]))
    return {"clients": opened, "jobs": len(jobs), "steps": rounds * len(jobs), "expected": rounds * len(watched),
            "delivered": len(delays), "faults": answer["faults"], "publish_s": round(publish_s, 2), **_stats(delays)}


# --- the run -----------------------------------------------------------------------------------------------


def run(plan: Plan) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="gw-bench-progress-")
    redis_port, port = _free_port(), _free_port()
    url = f"redis://127.0.0.1:{redis_port}/0"
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    log = open(Path(tmp) / "gateway.log", "wb")  # noqa: SIM115 (closed below)
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "demo", "--port", str(port), "--redis", url,
                                "--job-workers", "0", "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT,
                               cwd=ROOT.parent)
    try:
        _wait_port(redis_port, redis)
        _wait_port(port, gateway)
        result: dict[str, Any] = {
            "sync_steps_per_s": publish_rate_sync(url, plan.publish_steps),
            "async_steps_per_s": asyncio.run(publish_rate_async(url, plan.publish_steps)),
            "publish_steps": plan.publish_steps,
        }
        one = f"bench-one-{time.time_ns()}"
        result["one_job"] = delay_run(url, port, [one], [one] * plan.watchers, plan.one_job_steps, plan.pace)
        many = [f"bench-many-{i}-{time.time_ns()}" for i in range(plan.many_jobs)]
        result["many_jobs"] = delay_run(url, port, many, many, plan.many_rounds, plan.pace)
        return result
    finally:
        for proc in (gateway, redis):
            proc.terminate()
            proc.wait(10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(result: dict[str, Any], plan_name: str, seconds: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    lines = [
        HEADING, "",
        f"`python -m benchmarks progress --{plan_name}` — run {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"
        f" at commit `{commit}`, {seconds:.0f} s. One Redis, one `gateway demo --redis … --job-workers 0` "
        "(uvicorn h11 + wsproto), one watcher process of lean WebSocket clients (`gateway.client.lean`), and the "
        "publishing worker (this process), all on the same 2 shared cores.", "",
        "| publisher | steps | steps per second (each awaited) |", "|---|---:|---:|",
        f"| sync (`progress.job(id).step`, a Celery task's) | {result['publish_steps']:,} "
        f"| {result['sync_steps_per_s']:,.0f} |",
        f"| async (`progress.ajob(id).step`, an arq job's) | {result['publish_steps']:,} "
        f"| {result['async_steps_per_s']:,.0f} |", "",
        "| delay from `job.step` to the client | clients | jobs | steps published | delivered | seq faults "
        "| p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, name in (("one_job", "1,000 clients watching one job"), ("many_jobs", "1,000 jobs, one client each")):
        r = result[key]
        lines.append(f"| {name} | {r['clients']:,} | {r['jobs']:,} | {r['steps']:,} | {r['delivered']:,}/"
                     f"{r['expected']:,} | {r['faults']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |")
    return "\n".join(lines + ["", *READING]) + "\n"


READING = [
    "**Reading these figures.**",
    "- A step is one Redis round trip: one Lua script writes the record and the log and PUBLISHes the `progress` "
    "call on the backplane, atomically; the publisher waits for its reply (which says whether a cancel was asked "
    "for). The rates are one worker publishing one step after another; several workers publish side by side.",
    "- One job, 1,000 watchers: each step is one Redis message to the gateway, which writes it to 1,000 sockets "
    "in turn; the delay is mostly that fan-out (the last client waits for the 999 before it), one step every "
    f"{Plan().pace * 1000:.0f} ms.",
    "- 1,000 jobs, one watcher each: every round publishes a step of each job back to back; each step reaches one "
    "socket, and the gateway keeps up with the publisher, so the delay is close to the network path alone.",
    "- seq faults: events a client received out of order, twice or with a gap after its snapshot (should be 0).",
]


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the job progress section of RESULTS.md, leaving the rest as it is."""
    text = path.read_text() if path.exists() else ""
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        rest = text[end + 1:] if end >= 0 else ""
        text = text[:start] + section + ("\n" + rest if rest else "")
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks progress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--watcher", type=int, help=argparse.SUPPRESS)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="plan", action="store_const", const="quick")
    mode.add_argument("--full", dest="plan", action="store_const", const="full")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.watcher:
        asyncio.run(_watcher(args.watcher))
        return 0
    name = args.plan or "quick"
    began = time.perf_counter()
    result = run(PLANS[name])
    section = markdown(result, name, time.perf_counter() - began)
    print(section)
    if not args.no_write:
        write_section(ROOT / "RESULTS.md", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
