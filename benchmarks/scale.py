"""``python -m benchmarks.scale``: scale-out figures of the gateway with its Redis backplane.

One command starts a Redis server, several ``gateway demo --redis URL --port P --job-workers 0``
processes (uvicorn h11 + wsproto, keep-alive 15 s) and several load generator processes (the lean
client of ``benchmarks.loadgen``, each holding clients round-robin over the gateways' ports), then:

1. **Hold.** N idle WebSocket connections (default 100,000) over the gateways, ramped in batches;
   time to establish, RSS of each gateway process, then held for 60 s with keep-alive running:
   alive on the client side and counted by each process (``GET /health`` → ``connections.echo``).
2. **Broadcast to all.** The controller, a process holding no connection, sends a few ``burst``
   messages 1 s apart with ``RedisBackplane(url).clients("echo").all.send(...)``; the payload carries
   its wall clock, each recipient records its latency. Delivered count, p50/p99/max per broadcast
   and over all of them.
3. **Fan-out, one process against several.** The same group fan-out as benchmark C (100 ``burst``
   messages 50 ms apart to a group, published by the controller through Redis) to 10,000 clients on
   one process, and to 10,000 spread over 3 processes: delivered counts, p50/p99, and their ratio.

Every step is bounded (counts, a timeout on each wait, a time budget); progress goes to stderr; the
results go to stdout and to ``benchmarks/out/scale/`` (results.json, report.md, the processes' logs),
and (at the default sizes) to a section of ``benchmarks/RESULTS.md``. Only 127.0.0.1 is used. The
load generator side runs as ``python -m benchmarks.scale --loadgen PORT,PORT,...`` (JSON lines on
stdin, like ``loadgen.py``).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .loadgen import Worker as PortWorker

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent
HEADING = "## Scale-out (Redis backplane)"
TARGET = "gateway-ws"


# --- the load generator side ----------------------------------------------------------------------


class Recorder:
    """Latency of every ``burst`` each member receives, kept per message number ``i``."""

    def __init__(self, members: int, expected: int, ports: list[int]) -> None:
        self.expected = expected
        self.by_port = {port: [array.array("f") for _ in range(expected)] for port in ports}
        self.received = [0] * members
        self.out_of_order = 0
        self.extra = 0
        self.complete = 0
        self.done = asyncio.Event()
        if members == 0:
            self.done.set()

    @property
    def latencies(self) -> list[array.array[float]]:
        merged = [array.array("f") for _ in range(self.expected)]
        for arrays in self.by_port.values():
            for into, values in zip(merged, arrays, strict=True):
                into.extend(values)
        return merged

    def receiver(self, index: int, port: int) -> Any:
        clock = time.time
        latencies = self.by_port[port]
        expected = self.expected

        def on_burst(data: dict[str, Any]) -> None:
            latency = (clock() - data["t"]) * 1000.0
            i = data["i"]
            count = self.received[index] + 1
            self.received[index] = count
            if i != count:
                self.out_of_order += 1
            if 1 <= i <= expected:
                latencies[i - 1].append(latency)
            else:
                self.extra += 1
            if count == expected:
                self.complete += 1
                if self.complete == len(self.received):
                    self.done.set()
        return on_burst


def _ignore(data: dict[str, Any]) -> None:
    pass


class MultiWorker:
    """One load generator process: a ``loadgen.Worker`` (and its HTTP pool) per gateway port."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.workers = {port: PortWorker(port) for port in ports}
        self.recorder: Recorder | None = None
        self.members: list[Any] = []

    async def open(self, n: int, ports: list[int], offset: int = 0, concurrency: int = 48,
                   target: str = TARGET) -> dict[str, Any]:
        """Open ``n`` clients, round-robin over ``ports`` starting at ``offset``."""
        k = len(ports)
        counts = [n // k + (1 if (i - offset) % k < n % k else 0) for i in range(k)]
        per_port = max(1, concurrency // k)
        start = time.perf_counter()
        answers = await asyncio.gather(*(
            self.workers[port].open(target, count, per_port) for port, count in zip(ports, counts, strict=True)
            if count))
        return {"opened": sum(a["opened"] for a in answers), "failed": sum(a["failed"] for a in answers),
                "errors": [e for a in answers for e in a["errors"]][:3], "seconds": time.perf_counter() - start,
                "held": sum(len(w.clients) for w in self.workers.values())}

    async def alive(self) -> dict[str, Any]:
        per_port = {str(p): sum(1 for c in w.clients if c.alive) for p, w in self.workers.items()}
        return {"alive": sum(per_port.values()), "per_port": per_port,
                "held": sum(len(w.clients) for w in self.workers.values())}

    async def join(self, group: str, concurrency: int = 48) -> dict[str, Any]:
        """Every held client joins ``group`` (a dead one, or one not answering in 10 s, is not a member)."""
        busy = [w for w in self.workers.values() if w.clients]
        per_port = max(1, concurrency // max(1, len(busy)))
        answers = await asyncio.gather(*(w.join(group, len(w.clients), per_port) for w in busy))
        self.members = [c for w in busy for c in w.members]
        return {"joined": sum(a["joined"] for a in answers), "failed": sum(a["failed"] for a in answers),
                "errors": [e for a in answers for e in a["errors"]][:3]}

    async def record_begin(self, expected: int, everyone: bool = False) -> dict[str, Any]:
        tagged = [(port, c) for port, w in self.workers.items() for c in (w.clients if everyone else w.members)]
        self.members = [c for _, c in tagged]
        recorder = Recorder(len(tagged), expected, list(self.workers))
        self.recorder = recorder
        for index, (port, client) in enumerate(tagged):
            client.on_burst = recorder.receiver(index, port)
        return {"members": len(tagged)}

    async def record_wait(self, wait: float) -> dict[str, Any]:
        recorder = self.recorder
        assert recorder is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.done.wait(), wait)
        for client in self.members:
            client.on_burst = _ignore
        self.recorder = None
        return {
            "members": len(recorder.received), "complete": recorder.complete,
            "delivered": sum(len(x) for x in recorder.latencies), "out_of_order": recorder.out_of_order,
            "extra": recorder.extra,
            "latencies": [base64.b64encode(x.tobytes()).decode() for x in recorder.latencies],
            "by_port": {str(port): base64.b64encode(array.array("f", [v for x in arrays for v in x]).tobytes()).decode()
                        for port, arrays in recorder.by_port.items()},
        }

    async def close(self) -> dict[str, Any]:
        closed = 0
        for worker in self.workers.values():
            closed += (await worker.close())["closed"]
        self.members = []
        return {"closed": closed}


async def serve_loadgen(ports: list[int]) -> None:
    worker = MultiWorker(ports)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            await worker.close()
            return
        command = json.loads(line)
        name = command.pop("cmd")
        try:
            answer = await getattr(worker, name)(**command)
        except Exception as exc:
            answer = {"error": f"{exc!r}", "trace": traceback.format_exc()[-2000:]}
        times = os.times()
        answer["cpu"] = times.user + times.system
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def loadgen_main(ports: list[int]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_loadgen(ports))
    else:
        uvloop.run(serve_loadgen(ports))


# --- the controller side --------------------------------------------------------------------------

# Imported here: the load generator processes need none of it.
import psutil  # noqa: E402

from .run import Worker as RunWorker  # noqa: E402
from .run import _floats, free_port, percentile  # noqa: E402


def _get(port: int, path: str, timeout: float) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class LoadGen(RunWorker):
    """A load generator process holding clients of every gateway port (``call``/``stop`` from run.py)."""

    @classmethod
    async def start_on(cls, ports: list[int]) -> LoadGen:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.scale", "--loadgen", ",".join(map(str, ports)), cwd=ROOT.parent,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 27,
        )
        return cls(proc)


class Proc:
    """A child process (Redis or a gateway) with its CPU and RSS meters and a log file."""

    def __init__(self, name: str, args: list[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=self._file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        with contextlib.suppress(psutil.Error):
            times = self.ps.cpu_times()
            return float(times.user + times.system)
        return 0.0

    def rss(self) -> int:
        with contextlib.suppress(psutil.Error):
            return int(self.ps.memory_info().rss)
        return 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, wait: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._file.close()


class Meter:
    """CPU% (100 = one core) of each gateway, of Redis and of the load generators over wall time."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.t0 = time.perf_counter()
        self.gw0 = [g.cpu() for g in bench.gateways]
        self.redis0 = bench.redis.cpu() if bench.redis else 0.0
        self.lg0 = [w.cpu_now() for w in bench.loadgens]

    def read(self) -> dict[str, Any]:
        wall = max(time.perf_counter() - self.t0, 1e-6)
        gws = [(g.cpu() - c) / wall * 100 for g, c in zip(self.bench.gateways, self.gw0, strict=True)]
        lgs = [(w.cpu_now() - c) / wall * 100 for w, c in zip(self.bench.loadgens, self.lg0, strict=True)]
        redis = ((self.bench.redis.cpu() - self.redis0) / wall * 100) if self.bench.redis else 0.0
        return {"wall_s": round(wall, 2), "gateway_cpu_pct": [round(x, 1) for x in gws],
                "gateway_cpu_sum_pct": round(sum(gws), 1), "loadgen_cpu_pct": [round(x, 1) for x in lgs],
                "loadgen_cpu_sum_pct": round(sum(lgs), 1), "loadgen_cpu_max_pct": round(max(lgs, default=0), 1),
                "redis_cpu_pct": round(redis, 1)}


def _stats(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    return {"p50_ms": round(percentile(values, 50), 1), "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(values[-1], 1)}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="gateway-scale-"))
        self.redis: Proc | None = None
        self.redis_url = ""
        self.gateways: list[Proc] = []
        self.ports: list[int] = []
        self.loadgens: list[LoadGen] = []
        self.backplane: Any = None
        self.results: dict[str, Any] = {"meta": {}, "hold": {}, "broadcast": {}, "fanout": [], "closes": [],
                                        "skipped": [], "problems": []}

    # --- helpers ---
    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {text}", file=sys.stderr, flush=True)

    def left(self) -> float:
        return float(self.args.budget) - (time.monotonic() - self.started)

    def over_budget(self, what: str) -> bool:
        if self.left() <= 0:
            self.results["skipped"].append(f"{what}: the time budget of {self.args.budget:.0f} s was spent")
            self.say(f"skipped {what}: time budget spent")
            return True
        return False

    def meter(self) -> Meter:
        return Meter(self)

    async def all(self, timeout: float, cmd: str, per: list[dict[str, Any]] | None = None,
                  **args: Any) -> list[dict[str, Any]]:
        extra = per or [{} for _ in self.loadgens]
        return list(await asyncio.gather(
            *(w.call(timeout, cmd, **args, **e) for w, e in zip(self.loadgens, extra, strict=True))))

    def split(self, n: int) -> list[int]:
        k = len(self.loadgens)
        return [n // k + (1 if i < n % k else 0) for i in range(k)]

    async def health(self) -> list[int]:
        """Connections each gateway process holds, by its own count (-1: no answer)."""
        async def one(port: int) -> int:
            try:
                status, body = await asyncio.to_thread(_get, port, "/health", 30.0)
                if status != 200:
                    self.results["problems"].append(
                        f"at {time.monotonic() - self.started:.0f} s, /health on {port} answered {status}: {body}")
                return int(body["connections"]["echo"])
            except Exception as exc:
                self.results["problems"].append(f"/health on {port} failed: {exc!r}")
                return -1
        return list(await asyncio.gather(*(one(p) for p in self.ports)))

    # --- processes ---
    async def start(self) -> None:
        a = self.args
        redis_port = free_port()
        self.redis = Proc("redis", [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                                    "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
                          self.tmp / "redis.log", self.tmp)
        self.redis_url = f"redis://{HOST}:{redis_port}/0"
        import redis.asyncio as aioredis

        probe = aioredis.Redis(connection_pool=aioredis.ConnectionPool.from_url(self.redis_url))
        try:
            for _ in range(100):
                with contextlib.suppress(Exception):
                    if await probe.ping():
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"redis did not start: {self.redis.tail()}")
        finally:
            await probe.aclose()
        self.say(f"redis on {redis_port}")
        for i in range(a.procs):
            port = free_port()
            self.ports.append(port)
            self.gateways.append(Proc(
                f"gateway{i}", [sys.executable, "-m", "gateway", "demo", "--redis", self.redis_url, "--port",
                                str(port), "--job-workers", "0", "--log-level", "warning"],
                self.tmp / f"gateway{i}.log", ROOT.parent))
        deadline = time.monotonic() + 60
        for gw, port in zip(self.gateways, self.ports, strict=True):
            while True:
                if not gw.alive():
                    raise RuntimeError(f"{gw.name} exited: {gw.tail()}")
                with contextlib.suppress(Exception):
                    status, body = await asyncio.to_thread(_get, port, "/health", 1.0)
                    if status == 200 and body.get("backplane_status") == "up":
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{gw.name} not ready in 60 s: {gw.tail()}")
                await asyncio.sleep(0.2)
        self.say(f"{a.procs} gateway processes on ports {self.ports}")
        self.loadgens = [await LoadGen.start_on(self.ports) for _ in range(a.loadgens)]
        from gateway.backplane.redis import RedisBackplane

        self.backplane = RedisBackplane(self.redis_url, node="scale-controller")
        # A process that serves no connection must start() the backplane: until it has subscribed,
        # ``healthy`` is False and a send is delivered "locally only", i.e. to nobody here.
        await self.backplane.start()
        if not self.backplane.healthy:
            raise RuntimeError("the controller's backplane did not connect to redis")
        self.results["meta"]["base_rss"] = [g.rss() for g in self.gateways]

    async def stop(self) -> None:
        for w in self.loadgens:
            with contextlib.suppress(Exception):
                await w.call(60, "close")
        await asyncio.gather(*(w.stop() for w in self.loadgens), return_exceptions=True)
        if self.backplane is not None:
            with contextlib.suppress(Exception):
                await self.backplane.close()
        for gw in self.gateways:
            log = gw.tail(3000)
            if "Traceback" in log or "ERROR" in log or "WARNING" in log:
                self.results["problems"].append(f"{gw.name} log tail: {log[-1500:]}")
            await asyncio.to_thread(gw.stop)
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)
        logs = self.args.out / "logs"  # the processes' own logs, kept beside results.json
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True, exist_ok=True)
        for log_file in self.tmp.glob("*.log"):
            shutil.copy(log_file, logs / log_file.name)
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def token_keys(self) -> int:
        """How many connection tokens the directory in Redis holds (``gw:tok:*``)."""
        tokens = 0
        async for _ in self.backplane._redis.scan_iter(match="gw:tok:*", count=10_000):
            tokens += 1
        return tokens

    async def close_all(self, what: str) -> None:
        """Close every client, wait (bounded) until no gateway counts one, and note what Redis kept."""
        closed = sum(x["closed"] for x in await self.all(300, "close"))
        deadline = time.monotonic() + 90
        counts = await self.health()
        while time.monotonic() < deadline and any(c != 0 for c in counts):
            await asyncio.sleep(1.0)
            counts = await self.health()
        if any(c != 0 for c in counts):
            self.results["problems"].append(f"after closing {what}, the gateways still count {counts}")
        await asyncio.sleep(1.0)
        tokens = await self.token_keys()
        downs = [gw.tail(1 << 22).count("redis unavailable") for gw in self.gateways]
        self.results["closes"].append({"after": what, "closed": closed, "token_keys_left": tokens,
                                       "backplane_down_events_so_far": downs})
        self.say(f"closed {closed} ({what}); token keys left in redis: {tokens}; "
                 f"'redis unavailable' events per gateway so far: {downs}")

    def per_process(self, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Latency of the deliveries by the gateway process that made them (over every message)."""
        rows = []
        for port in self.ports:
            values = [x for ans in answers for x in _floats(ans["by_port"][str(port)])]
            rows.append({"port": port, "delivered": len(values), **_stats(values)})
        return rows

    # --- 1. hold ---
    async def hold(self) -> None:
        a = self.args
        n, k = a.n, len(self.loadgens)
        held = [0] * k
        target = self.split(n)
        failed, errors = 0, []
        concurrency = a.concurrency
        meter = self.meter()
        t0 = time.perf_counter()
        while sum(held) < n:
            if self.left() < a.hold + 120:
                self.results["skipped"].append(f"ramp stopped at {sum(held)}: time budget")
                self.say(f"ramp stopped at {sum(held)} of {n}: time budget")
                break
            batch = [min(target[i] - held[i], -(-a.batch // k)) for i in range(k)]
            if not any(batch):
                break
            b0 = time.perf_counter()
            answers = await self.all(900, "open", [
                {"n": b, "ports": self.ports, "offset": (i + held[i]) % len(self.ports),
                 "concurrency": concurrency} for i, b in enumerate(batch)])
            held = [x["held"] for x in answers]
            step_failed = sum(x["failed"] for x in answers)
            failed += step_failed
            errors += [e for x in answers for e in x["errors"]][:3]
            took = time.perf_counter() - b0
            self.say(f"hold: {sum(held)}/{n} open ({sum(batch) - step_failed} in {took:.1f} s = "
                     f"{(sum(batch) - step_failed) / took:.0f}/s), failed {failed}, "
                     f"loadgen CPU {meter.read()['loadgen_cpu_sum_pct']:.0f}%, {concurrency} handshakes in flight "
                     f"per load generator")
            if step_failed > 0.01 * sum(batch) and concurrency > 4:
                # Handshakes that wait too long are dropped by the server (its 15 s handshake timeout):
                # the box is saturated, so ramp slower.
                concurrency = max(4, concurrency // 2)
                self.results["problems"].append(f"at {sum(held)}: {step_failed} of {sum(batch)} failed "
                                                f"({errors[-3:]}); handshakes in flight per load generator "
                                                f"lowered to {concurrency}")
            if step_failed > 0.25 * sum(batch):
                self.results["problems"].append(f"ramp stopped at {sum(held)}: {step_failed} of a batch of "
                                                f"{sum(batch)} failed: {errors[:3]}")
                self.say(f"ramp stopped: too many failures {errors[:3]}")
                break
        ramp = meter.read()
        established = time.perf_counter() - t0
        await asyncio.sleep(a.settle)
        rss_open = [g.rss() for g in self.gateways]
        counts_open = await self.health()
        tokens_open = await self.token_keys()
        self.say(f"hold: {sum(held)} open in {established:.1f} s; gateways count {counts_open}; "
                 f"{tokens_open} token keys in redis; "
                 f"RSS MiB {[round(r / 2**20) for r in rss_open]}; holding {a.hold:.0f} s")
        meter = self.meter()
        await asyncio.sleep(a.hold)
        idle = meter.read()
        alive_answers = await self.all(120, "alive")
        alive = sum(x["alive"] for x in alive_answers)
        per_port = [sum(x["per_port"][str(p)] for x in alive_answers) for p in self.ports]
        counts = await self.health()
        rss_end = [g.rss() for g in self.gateways]
        base = self.results["meta"]["base_rss"]
        row = {
            "n": n, "held": sum(held), "failed": failed, "errors": errors[:3],
            "established_s": round(established, 1), "rate_per_s": round(sum(held) / max(established, 1e-6)),
            "ramp": ramp, "hold_s": a.hold, "idle": idle, "alive": alive, "alive_per_process": per_port,
            "server_counts": counts, "server_counts_after_open": counts_open,
            "token_keys_after_open": tokens_open, "server_count": sum(c for c in counts if c > 0),
            "rss_after_open": rss_open, "rss_after_hold": rss_end,
            "rss_per_conn_kib": [round((r - b) / max(1, c) / 1024, 1) for r, b, c in zip(rss_end, base, counts,
                                                                                          strict=True)],
        }
        self.results["hold"] = row
        self.say(f"hold: {alive}/{sum(held)} alive after {a.hold:.0f} s (per process {per_port}); gateways count "
                 f"{counts} = {row['server_count']}; idle CPU gateways {idle['gateway_cpu_sum_pct']:.0f}%, "
                 f"loadgens {idle['loadgen_cpu_sum_pct']:.0f}%, redis {idle['redis_cpu_pct']:.1f}%; "
                 f"RSS MiB {[round(r / 2**20) for r in rss_end]}")

    # --- 2. broadcast to all ---
    async def broadcast(self) -> None:
        a = self.args
        count = a.broadcasts
        begun = await self.all(120, "record_begin", expected=count, everyone=True)
        members = sum(x["members"] for x in begun)
        clients = self.backplane.clients("echo")
        meter = self.meter()
        sent_at = []
        t0 = time.monotonic()
        for i in range(1, count + 1):
            await asyncio.sleep(max(0.0, t0 + (i - 1) * a.broadcast_interval - time.monotonic()))
            sent_at.append(time.time())
            await clients.all.send("burst", {"i": i, "t": time.time()})
        answers = await self.all(a.broadcast_wait + 60, "record_wait", wait=a.broadcast_wait)
        load = meter.read()
        per: list[dict[str, Any]] = []
        everything: list[float] = []
        for i in range(count):
            values = [x for ans in answers for x in _floats(ans["latencies"][i])]
            everything += values
            per.append({"i": i + 1, "delivered": len(values), "expected": members, **_stats(values)})
            self.say(f"broadcast {i + 1}: {len(values)}/{members} delivered, p50 {per[-1]['p50_ms']:.0f} ms, "
                     f"p99 {per[-1]['p99_ms']:.0f} ms, max {per[-1]['max_ms']:.0f} ms")
        per_process = self.per_process(answers)
        self.say(f"broadcast, per process (p50/p99/max ms): {per_process}")
        row = {"members": members, "count": count, "interval_s": a.broadcast_interval, "per_message": per,
               "per_process": per_process,
               "delivered": len(everything), "expected": members * count,
               "complete": sum(x["complete"] for x in answers),
               "out_of_order": sum(x["out_of_order"] for x in answers), **_stats(everything), "load": load}
        self.results["broadcast"] = row
        self.say(f"broadcast: {row['delivered']}/{row['expected']} delivered, p50 {row['p50_ms']:.0f} ms, p99 "
                 f"{row['p99_ms']:.0f} ms; CPU gateways {load['gateway_cpu_sum_pct']:.0f}%, loadgens "
                 f"{load['loadgen_cpu_sum_pct']:.0f}%, redis {load['redis_cpu_pct']:.1f}%")

    # --- 3. fan-out, one process against several ---
    async def fanout(self, procs: int, round_: int) -> None:
        a = self.args
        size = a.fanout_n
        ports = self.ports[:procs]
        meter = self.meter()
        answers = await self.all(600, "open", [
            {"n": n, "ports": ports, "offset": i % procs, "concurrency": a.concurrency}
            for i, n in enumerate(self.split(size))])
        opened = meter.read()
        held = sum(x["held"] for x in answers)
        group = f"fan-{procs}-{round_}"
        joined = await self.all(300, "join", group=group)
        await self.all(60, "record_begin", expected=a.fanout_count)
        counts = await self.health()
        clients = self.backplane.clients("echo").group(group)
        meter = self.meter()
        t0 = time.monotonic()
        for i in range(1, a.fanout_count + 1):
            await asyncio.sleep(max(0.0, t0 + (i - 1) * a.fanout_interval - time.monotonic()))
            await clients.send("burst", {"i": i, "t": time.time()})
        results = await self.all(a.fanout_wait + 60, "record_wait", wait=a.fanout_wait)
        load = meter.read()
        values = sorted(x for r in results for enc in r["latencies"] for x in _floats(enc))
        used = [load["gateway_cpu_pct"][self.ports.index(p)] for p in ports]
        row = {"processes": procs, "round": round_, "clients": size, "held": held,
               "per_process": self.per_process(results)[:procs],
               "joined": sum(x["joined"] for x in joined), "join_failed": sum(x["failed"] for x in joined),
               "server_counts": counts[:procs], "messages": a.fanout_count, "delivered": len(values),
               "expected": size * a.fanout_count, "out_of_order": sum(r["out_of_order"] for r in results),
               **_stats(values), "established_s": opened["wall_s"], "load": load,
               "gateway_cpu_used_pct": used}
        self.results["fanout"].append(row)
        self.say(f"fan-out {size} on {procs} process(es), round {round_}: {row['delivered']}/{row['expected']} "
                 f"delivered, p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, max {row['max_ms']:.0f} ms; "
                 f"CPU gateways {used}, loadgens {load['loadgen_cpu_sum_pct']:.0f}%, "
                 f"redis {load['redis_cpu_pct']:.1f}%")
        await self.close_all(f"fan-out on {procs} process(es), round {round_}")

    async def run(self) -> dict[str, Any]:
        a = self.args
        self.results["meta"] = environment(a)
        try:
            await self.start()
            self.results["meta"]["ports"] = self.ports
            steps: list[tuple[str, Any]] = []
            if "hold" in a.only:
                steps.append(("hold", self.hold))
                if "broadcast" in a.only:
                    steps.append(("broadcast", self.broadcast))
            close_needed = "hold" in a.only
            if "fanout" in a.only:
                order = [1, a.fanout_procs] + ([a.fanout_procs, 1] if a.fanout_rounds > 1 else [])
                for r, procs in enumerate(order, start=1):
                    steps.append((f"fanout {procs} round {r}", lambda p=procs, r=r: self.fanout(p, (r + 1) // 2)))
            for name, step in steps:
                if name.startswith("fanout") and close_needed:
                    close_needed = False
                    self.say("closing the held connections")
                    await self.close_all("the held connections")
                if self.over_budget(name):
                    continue
                try:
                    await step()
                except Exception as exc:
                    self.results["skipped"].append(f"{name}: failed: {exc!r}"[:2000])
                    self.say(f"{name} FAILED: {exc!r}"[:2000])
                    traceback.print_exc()
                    for gw in self.gateways:
                        if not gw.alive():
                            self.results["problems"].append(f"{gw.name} died: {gw.tail()}")
        finally:
            self.say("stopping")
            await self.stop()
        self.results["meta"]["seconds"] = round(time.monotonic() - self.started, 1)
        self.results["fanout_ratio"] = fanout_ratio(self.results["fanout"], a.fanout_procs)
        return self.results


def fanout_ratio(rows: list[dict[str, Any]], procs: int) -> dict[str, Any]:
    """Several processes over one: p50 and p99 (mean over rounds) and their ratio."""
    def mean(key: str, p: int) -> float:
        values = [r[key] for r in rows if r["processes"] == p]
        return sum(values) / len(values) if values else float("nan")
    one50, one99, many50, many99 = mean("p50_ms", 1), mean("p99_ms", 1), mean("p50_ms", procs), mean("p99_ms", procs)
    return {"one_p50_ms": round(one50, 1), "one_p99_ms": round(one99, 1), "many_p50_ms": round(many50, 1),
            "many_p99_ms": round(many99, 1), "processes": procs,
            "p50_ratio": round(many50 / one50, 2) if one50 else float("nan"),
            "p99_ratio": round(many99 / one99, 2) if one99 else float("nan")}


def environment(a: argparse.Namespace) -> dict[str, Any]:
    import platform

    from .run import _version

    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT.parent, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "gateway"], cwd=ROOT.parent, capture_output=True,
                           text=True).stdout.split("\n")
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    return {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": git.stdout.strip(),
            "uncommitted_in_gateway": [line[3:] for line in dirty if line.strip()],
            "python": platform.python_version(), "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "redis": next((w[2:] for w in redis_version if w.startswith("v=")), "?"),
            "versions": {p: _version(p) for p in ("gateway", "uvicorn", "h11", "wsproto", "uvloop", "redis")},
            "options": {k: v for k, v in vars(a).items() if k != "loadgen"}}


# --- the report -----------------------------------------------------------------------------------


def _mib(value: int) -> str:
    return f"{value / 2**20:.0f}"


def markdown(r: dict[str, Any]) -> str:
    m = r["meta"]
    o = m["options"]
    lines = [HEADING, "",
             f"`python -m benchmarks.scale` — run {m['started']} at commit `{m['commit']}`"
             + (f" (with uncommitted changes to {', '.join(m['uncommitted_in_gateway'])})"
                if m.get("uncommitted_in_gateway") else "") + f", {m.get('seconds', 0):.0f} s. "
             f"{o['procs']} `gateway demo --redis … --job-workers 0` processes (uvicorn h11 + wsproto, "
             f"keep-alive 15 s), one Redis {m['redis']} (no persistence), {o['loadgens']} load generator "
             f"processes (`gateway.client.lean`, uvloop), each connecting its WebSocket clients round-robin to "
             f"the gateways' ports directly. Machine: {m['cores']} cores shared by all of them, "
             f"{m['memory_gib']} GiB, Python {m['python']}. CPU% = process CPU time over wall time, 100% = "
             f"one core.", ""]
    h = r.get("hold") or {}
    if h:
        ramp, idle = h["ramp"], h["idle"]
        lines += ["### Held idle WebSocket connections", "",
                  "| connections | established in s | per s | failed | alive after "
                  f"{h['hold_s']:.0f} s (client) | counted by the gateways (`/health`) | loadgen CPU % while "
                  "establishing (sum, max one) | idle CPU %: gateways (sum), loadgens (sum), Redis |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|",
                  f"| {h['held']:,} of {h['n']:,} | {h['established_s']:.1f} | {h['rate_per_s']:,} | {h['failed']} | "
                  f"{h['alive']:,} | {h['server_count']:,} | {ramp['loadgen_cpu_sum_pct']:.0f} "
                  f"({ramp['loadgen_cpu_max_pct']:.0f}) | {idle['gateway_cpu_sum_pct']:.0f}, "
                  f"{idle['loadgen_cpu_sum_pct']:.0f}, {idle['redis_cpu_pct']:.1f} |", "",
                  "| gateway process | connections (its count) | alive (client) | RSS MiB at start | after open | "
                  f"after {h['hold_s']:.0f} s | KiB/conn | idle CPU % | CPU % while establishing |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for i, count in enumerate(h["server_counts"]):
            lines.append(f"| {i + 1} | {count:,} | {h['alive_per_process'][i]:,} | {_mib(m['base_rss'][i])} | "
                         f"{_mib(h['rss_after_open'][i])} | {_mib(h['rss_after_hold'][i])} | "
                         f"{h['rss_per_conn_kib'][i]:.1f} | {idle['gateway_cpu_pct'][i]:.1f} | "
                         f"{ramp['gateway_cpu_pct'][i]:.0f} |")
        lines.append("")
    b = r.get("broadcast") or {}
    if b:
        load = b["load"]
        lines += [f"### Broadcast to all {b['members']:,}: {b['count']} messages {b['interval_s']:g} s apart", "",
                  "Published by the controller (a process holding no connection) with "
                  "`RedisBackplane(url).clients(\"echo\").all.send(\"burst\", {\"i\", \"t\"})`, `t` = its wall "
                  "clock; latency = receipt − `t` in each recipient.", "",
                  "| message | delivered | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|"]
        for p in b["per_message"]:
            lines.append(f"| {p['i']} | {p['delivered']:,}/{p['expected']:,} | {p['p50_ms']:.0f} | "
                         f"{p['p99_ms']:.0f} | {p['max_ms']:.0f} |")
        lines += [f"| **all** | **{b['delivered']:,}/{b['expected']:,}** | **{b['p50_ms']:.0f}** | "
                  f"**{b['p99_ms']:.0f}** | **{b['max_ms']:.0f}** |", ""]
        if b.get("per_process"):
            lines += ["By the gateway process that delivered (all messages): " + "; ".join(
                f"{i + 1}: p50 {p['p50_ms']:.0f}, p99 {p['p99_ms']:.0f}, max {p['max_ms']:.0f} ms"
                for i, p in enumerate(b["per_process"])) + ".", ""]
        lines += [
                  f"Out of order: {b['out_of_order']}. CPU over the {load['wall_s']:.0f} s from the first send to "
                  f"the last delivery: gateways {load['gateway_cpu_sum_pct']:.0f}% (sum), load generators "
                  f"{load['loadgen_cpu_sum_pct']:.0f}%, Redis {load['redis_cpu_pct']:.1f}%.", ""]
    rows = r.get("fanout") or []
    if rows:
        ratio = r["fanout_ratio"]
        first = rows[0]
        lines += [f"### Fan-out to {first['clients']:,}: one process against {ratio['processes']}",
                  "", f"Group fan-out as in C: {first['messages']} `burst` messages 50 ms apart to a group, "
                  "published by the controller through Redis, same gateways (the others idle), connections closed "
                  "between runs.", "",
                  "| processes | round | joined | delivered | p50 ms | p99 ms | max ms | CPU % of the gateways used |"
                  " loadgen CPU % (sum, max one) | Redis CPU % |",
                  "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
        for f in rows:
            load = f["load"]
            lines.append(f"| {f['processes']} | {f['round']} | {f['joined']:,} | {f['delivered']:,}/{f['expected']:,} |"
                         f" {f['p50_ms']:.0f} | {f['p99_ms']:.0f} | {f['max_ms']:.0f} | "
                         f"{', '.join(f'{x:.0f}' for x in f['gateway_cpu_used_pct'])} | "
                         f"{load['loadgen_cpu_sum_pct']:.0f} ({load['loadgen_cpu_max_pct']:.0f}) | "
                         f"{load['redis_cpu_pct']:.1f} |")
        lines += ["", f"Latency ratio, {ratio['processes']} processes over 1 (mean over rounds): p50 "
                  f"{ratio['many_p50_ms']:.0f} / {ratio['one_p50_ms']:.0f} ms = **{ratio['p50_ratio']}×**, p99 "
                  f"{ratio['many_p99_ms']:.0f} / {ratio['one_p99_ms']:.0f} ms = **{ratio['p99_ratio']}×**.", ""]
    lines += _round_two(h, b)
    closes = r.get("closes") or []
    if closes:
        lines += ["Closing: " + "; ".join(
            f"after {c['after']}: {c['closed']:,} closed, {c['token_keys_left']:,} token keys left in Redis"
            for c in closes) + ". `redis unavailable` events logged by each gateway over the run: "
            f"{closes[-1]['backplane_down_events_so_far']}.", ""]
    notes = r.get("skipped", []) + r.get("problems", [])
    if notes:
        lines += ["Skipped or failed:", ""] + [f"- {n[:500]}" for n in notes] + [""]
    return "\n".join(lines)


def _round_two(h: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The second round's bars at 100,000 connections, beside the figures of the run they were set against."""
    rows = []
    if h and h["n"] >= 100_000:
        cpu = h["idle"]["gateway_cpu_sum_pct"]
        rows.append(f"| {h['n']:,} idle WebSockets: the gateways' CPU (sum), all alive after {h['hold_s']:.0f} s | "
                    f"116%, all alive | {cpu:.0f}%, {h['alive']:,} alive | ≤ 40% | "
                    f"{'yes' if cpu <= 40 and h['alive'] == h['n'] else '**no**'} |")
    if b and b["members"] >= 100_000:
        ok = b["p99_ms"] <= 3000 and b["delivered"] == b["expected"]
        rows.append(f"| broadcast to all {b['members']:,}: p99, every message delivered | 42,983 ms, all | "
                    f"{b['p99_ms']:,.0f} ms, {b['delivered']:,}/{b['expected']:,} | ≤ 3,000 ms | "
                    f"{'yes' if ok else '**no**'} |")
    if not rows:
        return []
    return ["### Bars, round two", "", "Before: the run at `cbd193a` (2026-11-23).", "",
            "| bar | before | now | limit | met |", "|---|---:|---:|---:|---|", *rows, ""]


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the scale-out section of RESULTS.md, leaving the rest as it is."""
    text = path.read_text() if path.exists() else ""
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = text.find("\n## ", start + len(HEADING))
        rest = text[end + 1:] if end >= 0 else ""
        text = text[:start] + section.rstrip("\n") + "\n" + ("\n" + rest if rest else "")
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--small", action="store_true", help="600 connections, fan-out to 300: a quick check")
    parser.add_argument("--n", type=int, default=100_000, help="idle connections held (default 100,000)")
    parser.add_argument("--procs", type=int, default=6, help="gateway processes (default 6)")
    parser.add_argument("--loadgens", type=int, default=6, help="load generator processes (default 6; ≤ 19,000 "
                        "connections each)")
    parser.add_argument("--batch", type=int, default=6000, help="connections opened per ramp step (all loadgens)")
    parser.add_argument("--concurrency", type=int, default=48, help="handshakes in flight per load generator")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds the idle connections are held")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--broadcasts", type=int, default=5)
    parser.add_argument("--broadcast-interval", type=float, default=1.0)
    parser.add_argument("--broadcast-wait", type=float, default=120.0)
    parser.add_argument("--fanout-n", type=int, default=10_000)
    parser.add_argument("--fanout-procs", type=int, default=3)
    parser.add_argument("--fanout-count", type=int, default=100)
    parser.add_argument("--fanout-interval", type=float, default=0.05)
    parser.add_argument("--fanout-wait", type=float, default=60.0)
    parser.add_argument("--fanout-rounds", type=int, default=2, help="1: one then several; 2: 1, k, k, 1")
    parser.add_argument("--only", default="hold,broadcast,fanout")
    parser.add_argument("--budget", type=float, default=30 * 60.0, help="seconds; later steps are skipped past it")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "scale")
    parser.add_argument("--results-md", choices=("auto", "yes", "no"), default="auto",
                        help="write the section of RESULTS.md (auto: only at the default sizes)")
    args = parser.parse_args(argv)
    if args.loadgen:
        loadgen_main([int(p) for p in args.loadgen.split(",")])
        return 0
    if args.small:
        args.n, args.fanout_n, args.hold, args.broadcast_wait, args.fanout_wait = 600, 300, 5.0, 20.0, 20.0
        args.batch, args.budget = 300, 300.0
        args.out = ROOT / "out" / "scale-small"
    if args.n > 19_000 * args.loadgens:
        parser.error(f"{args.n} connections need at least {-(-args.n // 19_000)} load generators (19,000 each)")
    if args.n > 19_000 * args.procs:
        parser.error(f"{args.n} connections need at least {-(-args.n // 19_000)} gateway processes")
    args.only = tuple(args.only.split(","))
    results = asyncio.run(Bench(args).run())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    section = markdown(results)
    (args.out / "report.md").write_text(section)
    default_size = args.n == 100_000 and args.fanout_n == 10_000 and not args.small
    if args.results_md == "yes" or (args.results_md == "auto" and default_size):
        write_section(ROOT / "RESULTS.md", section)
    print(json.dumps(results, indent=1, default=str))
    print(section, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
