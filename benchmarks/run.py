"""The controller: starts servers and load generator processes, runs A, B and C, writes the results.

Every step is bounded: a fixed number of connections and messages, a timeout on each wait, and a
time budget for the whole run past which the remaining steps are skipped (and said so).
"""

from __future__ import annotations

import array
import asyncio
import base64
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .clients import DEFAULT_TARGETS

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent
FANOUT_KIND = {"raw-ws": "raw-ws", "raw-sse": "raw-sse", "sio-ws": "sio", "sio-polling": "sio"}
FANOUT_COUNT = 100
FANOUT_INTERVAL = 0.05


@dataclass
class Plan:
    """What one mode measures."""

    name: str
    stacks: tuple[str, ...] = ("h11", "standard")
    targets: tuple[str, ...] = DEFAULT_TARGETS
    rtt_warmup: int = 200
    rtt_count: int = 2000
    idle_ns: tuple[int, ...] = (1000, 10_000)
    idle_windows: tuple[float, ...] = (3.0, 15.0)
    fanout_sizes: tuple[int, ...] = (1000, 10_000)
    fanout_count: int = FANOUT_COUNT
    fanout_timeout: float = 30.0
    hold_n: int = 19_000
    hold_seconds: float = 60.0
    hold_targets: tuple[str, ...] = ("gateway-ws", "gateway-sse")
    hold_stacks: tuple[str, ...] = ("h11",)
    workers: int = 4
    hold_workers: int = 4
    settle: float = 2.0
    budget: float = 26.5 * 60.0
    only: tuple[str, ...] = ("A", "B", "C", "H")


PLANS: dict[str, Plan] = {
    "full": Plan("full"),
    "quick": Plan(
        "quick", rtt_warmup=100, rtt_count=1000, idle_ns=(1000,), idle_windows=(3.0,),
        fanout_sizes=(1000,), fanout_timeout=30.0, hold_n=2000, hold_seconds=5.0,
        workers=2, hold_workers=2, settle=1.0, budget=8 * 60.0,
    ),
    "smoke": Plan(
        "smoke", stacks=("h11",), targets=("gateway-ws", "gateway-sse", "raw-ws"), rtt_warmup=5, rtt_count=20,
        idle_ns=(10,), idle_windows=(0.5,), fanout_sizes=(10,), fanout_count=5, fanout_timeout=20.0,
        hold_n=10, hold_seconds=0.5, hold_targets=("gateway-ws",), hold_stacks=("h11",), workers=1,
        hold_workers=1, settle=0.2, budget=120.0,
    ),
}


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    rtt: list[dict[str, Any]] = field(default_factory=list)
    idle: list[dict[str, Any]] = field(default_factory=list)
    fanout: list[dict[str, Any]] = field(default_factory=list)
    hold: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# --- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


def _post(port: int, path: str, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


class Server:
    """One uvicorn process serving every target."""

    def __init__(self, stack: str, metrics: bool = False) -> None:
        self.stack = stack
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.server", "--stack", stack, "--port", str(self.port)]
            + (["--metrics"] if metrics else []),
            cwd=ROOT.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.ps = psutil.Process(self.proc.pid)

    async def ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_get, self.port, "/bench/stats", 1.0)
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("server did not start in time")

    def stats(self) -> Any:
        return _get(self.port, "/bench/stats", 30.0)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")[-3000:]


class Worker:
    """One load generator process, driven by JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.cpu = 0.0
        self.lock = asyncio.Lock()

    @classmethod
    async def start(cls, port: int) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.loadgen", str(port), cwd=ROOT.parent,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
        )
        return cls(proc)

    async def call(self, timeout: float, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self.lock:
            self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"load generator exited during {cmd}")
        answer: dict[str, Any] = json.loads(line)
        self.cpu = answer.get("cpu", self.cpu)
        if "error" in answer:
            raise RuntimeError(f"load generator failed in {cmd}: {answer['error']}\n{answer.get('trace', '')}")
        return answer

    def cpu_now(self) -> float:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(self.proc.pid).cpu_times()
            return float(times.user + times.system)
        return self.cpu

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class Fleet:
    """A server and its load generators, measured together."""

    def __init__(self, server: Server, workers: list[Worker]) -> None:
        self.server = server
        self.workers = workers

    @classmethod
    async def start(cls, stack: str, workers: int, metrics: bool = False) -> Fleet:
        server = Server(stack, metrics)
        try:
            await server.ready()
            started = [await Worker.start(server.port) for _ in range(workers)]
        except BaseException:
            server.stop()
            raise
        return cls(server, started)

    async def all(self, timeout: float, cmd: str, per_worker: list[dict[str, Any]] | None = None,
                  **args: Any) -> list[dict[str, Any]]:
        extra = per_worker or [{} for _ in self.workers]
        return list(await asyncio.gather(
            *(w.call(timeout, cmd, **args, **e) for w, e in zip(self.workers, extra, strict=True))))

    def split(self, n: int) -> list[int]:
        k = len(self.workers)
        return [n // k + (1 if i < n % k else 0) for i in range(k)]

    def meter(self) -> Meter:
        return Meter(self)

    async def stop(self) -> str:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await worker.call(30, "close")
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        return self.server.stop()


class Meter:
    """CPU of the server and of the load generators over a stretch of wall time."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.t0 = time.perf_counter()
        self.server0 = fleet.server.cpu()
        self.workers0 = [w.cpu_now() for w in fleet.workers]

    def read(self) -> dict[str, float]:
        wall = max(time.perf_counter() - self.t0, 1e-6)
        loads = [(w.cpu_now() - c) / wall * 100 for w, c in zip(self.fleet.workers, self.workers0, strict=True)]
        return {
            "wall_s": wall,
            "server_cpu_pct": (self.fleet.server.cpu() - self.server0) / wall * 100,
            "client_cpu_pct": sum(loads),
            "client_cpu_max_pct": max(loads),
        }


# --- measurements ---------------------------------------------------------------------------------


def _floats(data: str) -> list[float]:
    values = array.array("f")
    values.frombytes(base64.b64decode(data))
    return values.tolist()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


class Runner:
    def __init__(self, plan: Plan, out: Path, progress: Any = None) -> None:
        self.plan = plan
        self.out = out
        self.results = Results()
        self.started = time.monotonic()
        self.held: list[int] = []
        self.fanned: set[int] = set()
        self.progress = progress or (lambda text: print(text, file=sys.stderr, flush=True))

    def say(self, text: str) -> None:
        self.progress(f"[{time.monotonic() - self.started:7.1f}s] {text}")

    def over_budget(self, what: str) -> bool:
        if time.monotonic() - self.started > self.plan.budget:
            self.results.skipped.append(f"{what}: the run's time budget of {self.plan.budget:.0f} s was spent")
            self.say(f"skipped {what}: time budget spent")
            return True
        return False

    async def run(self) -> Results:
        self.results.meta = environment(self.plan)
        steps: list[tuple[Any, ...]] = []
        if "A" in self.plan.only:
            steps += [(f"{stack} A", self.rtt, stack) for stack in self.plan.stacks]
        if "H" in self.plan.only:
            steps += [(f"{s} hold {t}", self.hold, s, t)
                      for s in self.plan.hold_stacks for t in self.plan.hold_targets if t in self.plan.targets]
        if "B" in self.plan.only or "C" in self.plan.only:
            steps += [(f"{stack} B/C {t}", self.idle_and_fanout, stack, t)
                      for stack in self.plan.stacks for t in self.plan.targets]
        for name, step, *args in steps:
            if self.over_budget(name):
                continue
            try:
                await step(*args)
            except Exception as exc:
                self.results.skipped.append(f"{name}: failed: {exc!r}"[:2000])
                self.say(f"{name} FAILED: {exc!r}"[:2000])
        self.results.meta["seconds"] = time.monotonic() - self.started
        return self.results

    async def rtt(self, stack: str) -> None:
        fleet = await Fleet.start(stack, 1)
        try:
            for target in self.plan.targets:
                meter = fleet.meter()
                answer = await fleet.workers[0].call(
                    300, "rtt", target=target, warmup=self.plan.rtt_warmup, count=self.plan.rtt_count)
                load = meter.read()
                samples = sorted(_floats(answer["samples"]))
                row = {"stack": stack, "target": target, "count": len(samples),
                       "p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99),
                       "mean_ms": sum(samples) / len(samples), "samples": samples, **load}
                self.results.rtt.append(row)
                self.say(f"{stack} A {target}: p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms "
                         f"(server {load['server_cpu_pct']:.0f}% CPU, client {load['client_cpu_pct']:.0f}%)")
        finally:
            await fleet.stop()

    async def _open(self, fleet: Fleet, target: str, total: int) -> dict[str, Any]:
        held = self.held
        add = [max(0, want - have) for want, have in zip(fleet.split(total), held, strict=True)]
        meter = fleet.meter()
        answers = await fleet.all(600, "open", [{"n": n} for n in add], target=target)
        load = meter.read()
        self.held = [a["held"] for a in answers]
        failed = sum(a["failed"] for a in answers)
        errors = [e for a in answers for e in a["errors"]][:3]
        return {"established_s": load["wall_s"], "failed": failed, "errors": errors,
                "establish_client_cpu_pct": load["client_cpu_pct"],
                "establish_client_cpu_max_pct": load["client_cpu_max_pct"],
                "establish_server_cpu_pct": load["server_cpu_pct"]}

    async def _idle(self, fleet: Fleet, window: float) -> dict[str, float]:
        await asyncio.sleep(self.plan.settle)
        meter = fleet.meter()
        await asyncio.sleep(window)
        load = meter.read()
        return {"rss": fleet.server.rss(), "idle_server_cpu_pct": load["server_cpu_pct"],
                "idle_client_cpu_pct": load["client_cpu_pct"], "idle_window_s": load["wall_s"]}

    async def idle_and_fanout(self, stack: str, target: str) -> None:
        plan = self.plan
        fleet = await Fleet.start(stack, plan.workers)
        self.held = [0] * len(fleet.workers)
        self.fanned = set()
        try:
            warm = len(fleet.workers) * 5
            await self._open(fleet, target, warm)
            await asyncio.sleep(plan.settle)
            base_rss = fleet.server.rss()
            if "B" in plan.only or "C" in plan.only:
                for n, window in zip(plan.idle_ns, plan.idle_windows, strict=True):
                    if "C" in plan.only:  # fan-out to the sizes below n before growing to n
                        for size in plan.fanout_sizes:
                            if size <= sum(self.held) and size < n and size not in self.fanned:
                                await self.fanout(fleet, stack, target, size)
                    opened = await self._open(fleet, target, n)
                    idle = await self._idle(fleet, window)
                    alive = sum(a["alive"] for a in await fleet.all(60, "alive"))
                    row = {"stack": stack, "target": target, "n": n, "alive": alive, "base_rss": base_rss,
                           "rss_per_conn": (idle["rss"] - base_rss) / max(1, n - warm), **opened, **idle}
                    self.results.idle.append(row)
                    self.say(f"{stack} B {target} N={n}: {alive} alive, established in {opened['established_s']:.1f} s,"
                             f" {row['rss_per_conn'] / 1024:.1f} KiB/conn, idle server CPU "
                             f"{idle['idle_server_cpu_pct']:.1f}%, client {idle['idle_client_cpu_pct']:.1f}%"
                             + (f", {opened['failed']} failed: {opened['errors']}" if opened["failed"] else ""))
            if "C" in plan.only:
                for size in plan.fanout_sizes:
                    if size <= sum(self.held) and size not in self.fanned:
                        await self.fanout(fleet, stack, target, size)
        finally:
            log = await fleet.stop()
            if "Traceback" in log:
                self.say(f"{stack} {target}: server log tail:\n{log[-1500:]}")

    async def fanout(self, fleet: Fleet, stack: str, target: str, size: int) -> None:
        plan = self.plan
        self.fanned.add(size)
        group = f"fan{size}"
        split = fleet.split(size)
        joined = await fleet.all(300, "join", [{"n": n} for n in split], group=group)
        join_errors = [e for a in joined for e in a["errors"]]
        await fleet.all(30, "fanout_begin", count=plan.fanout_count)
        meter = fleet.meter()
        kind = FANOUT_KIND.get(target, "gateway")
        await asyncio.to_thread(
            _post, fleet.server.port,
            f"/bench/fanout?kind={kind}&group={group}&count={plan.fanout_count}&interval={FANOUT_INTERVAL}")
        answers = await fleet.all(plan.fanout_timeout + 30, "fanout_wait", wait=plan.fanout_timeout)
        load = meter.read()
        latencies = sorted(x * 1000.0 for a in answers for x in _floats(a["latencies"]))
        delivered = sum(a["delivered"] for a in answers)
        expected = size * plan.fanout_count  # every client asked to join: one that could not counts as missed
        row = {
            "stack": stack, "target": target, "clients": size, "messages": plan.fanout_count,
            "delivered": delivered, "expected": expected, "out_of_order": sum(a["out_of_order"] for a in answers),
            "joined": sum(a["joined"] for a in joined), "join_failed": sum(a["failed"] for a in joined),
            "join_errors": join_errors[:3],
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "latencies": latencies[:: max(1, len(latencies) // 20_000)], **load,
        }
        self.results.fanout.append(row)
        self.say(f"{stack} C {target} {size} clients: {delivered}/{expected} delivered, p50 {row['p50_ms']:.1f} ms,"
                 f" p99 {row['p99_ms']:.1f} ms (server {load['server_cpu_pct']:.0f}% CPU,"
                 f" clients {load['client_cpu_pct']:.0f}%)")

    async def hold(self, stack: str, target: str) -> None:
        plan = self.plan
        fleet = await Fleet.start(stack, plan.hold_workers)
        self.held = [0] * len(fleet.workers)
        try:
            await self._open(fleet, target, len(fleet.workers) * 5)
            await asyncio.sleep(plan.settle)
            base_rss = fleet.server.rss()
            opened = await self._open(fleet, target, plan.hold_n)
            await asyncio.sleep(plan.settle)
            rss = fleet.server.rss()
            self.say(f"{stack} hold {target}: {sum(self.held)} open in {opened['established_s']:.1f} s; "
                     f"holding {plan.hold_seconds:.0f} s")
            meter = fleet.meter()
            await asyncio.sleep(plan.hold_seconds)
            load = meter.read()
            alive = sum(a["alive"] for a in await fleet.all(60, "alive"))
            stats = await asyncio.to_thread(fleet.server.stats)
            server_count = stats["gateway"] if target.startswith("gateway") else stats.get(
                {"raw-ws": "raw_ws", "raw-sse": "raw_sse"}.get(target, "sio"), 0)
            answered = sum(a["answered"] for a in await fleet.all(300, "echo_all"))
            row = {"stack": stack, "target": target, "n": plan.hold_n, "held": sum(self.held), "alive": alive,
                   "server_count": server_count, "answered": answered, "hold_s": plan.hold_seconds,
                   "rss": rss, "base_rss": base_rss, "rss_per_conn": (rss - base_rss) / max(1, plan.hold_n),
                   "idle_server_cpu_pct": load["server_cpu_pct"], "idle_client_cpu_pct": load["client_cpu_pct"],
                   **opened}
            self.results.hold.append(row)
            self.results.idle.append({**row, "idle_window_s": plan.hold_seconds})
            self.say(f"{stack} hold {target}: {alive}/{plan.hold_n} alive after {plan.hold_seconds:.0f} s, "
                     f"{answered} answered an echo, server counts {server_count}; "
                     f"{row['rss_per_conn'] / 1024:.1f} KiB/conn, idle server CPU {load['server_cpu_pct']:.1f}%")
        finally:
            await fleet.stop()


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def environment(plan: Plan) -> dict[str, Any]:
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT.parent, capture_output=True, text=True)
    return {
        "mode": plan.name, "plan": asdict(plan), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": git.stdout.strip(), "python": platform.python_version(), "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "versions": {p: _version(p) for p in (
            "gateway", "uvicorn", "starlette", "h11", "wsproto", "httptools", "websockets", "uvloop",
            "python-socketio", "python-engineio")},
    }


def save(results: Results, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(asdict(results), indent=1))
    return path
