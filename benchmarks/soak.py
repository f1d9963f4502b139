"""The soak: many connections on all four transports, random drops and churn, for minutes; nothing may be lost.

    python -m benchmarks.soak                      # 1,000 connections, 120 s, writes docs/SOAK.md
    python -m benchmarks.soak --connections 200 --duration 30 --no-report     # a quick look

Three kinds of process, so that the load generator never competes with the server inside one interpreter:

- ``serve``: the server, uvicorn (h11 + wsproto) in a subprocess. A hub at ``/hubs/soak`` and a broadcaster that
  sends ``tick(n)``, n = 1, 2, 3 ..., to the group every client joins, every ``--tick-ms``.
- ``load``: load generators (``--workers`` subprocesses), each holding its share of ``HubClient``s with stateful
  reconnect, spread evenly over WebSockets, ServerSentEvents, ForeverFrame and LongPolling. Each client invokes
  ``Send(k)``, k = 1, 2, 3 ..., every ``--send-ms`` and checks the reply. The generator cuts random streams
  (``--drops-per-s``; the client resumes on the same token and the replay fills the gap) and closes random clients
  for new ones (``--churn-per-s``).
- the orchestrator (this command): starts both, prints progress, samples the server's RSS, stops the broadcaster at
  the end and waits for every client to have seen the last tick, then checks the books and writes the report.

What is checked, per client: every tick from the first it saw to the last, exactly once, in order; every ``Send``
answered with its own k. On the server: every client's k arrives exactly once, in order. Memory: the server's RSS at
the end may exceed its RSS after warm-up (one minute in, or half the run if shorter) by less than ``--rss-allowance``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")

# --- the server ---------------------------------------------------------------------------------


def create_app(tick_ms: float) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from gateway import Gateway, Hub

    books = {"sends": 0, "send_gaps": 0, "send_dups": 0}

    class SoakHub(Hub):
        async def join(self) -> None:
            await self.groups.add(self.context.connection_id, "soak")

        async def send(self, k: int) -> int:
            items = self.context.items
            last = items.get("k", 0)
            books["sends"] += 1
            if k <= last:
                books["send_dups"] += 1
            else:
                books["send_gaps"] += k - last - 1
                items["k"] = k
            return k

    gateway = Gateway(SoakHub, name="soak")
    state = {"tick": 0, "running": True}

    async def broadcast() -> None:
        group = gateway.clients.group("soak")
        while state["running"]:
            await asyncio.sleep(tick_ms / 1000)
            if state["running"]:
                state["tick"] += 1
                await group.send("tick", state["tick"])

    async def stats(request: Request) -> JSONResponse:
        registry = gateway.registry
        return JSONResponse({**books, "tick": state["tick"], "connections": len(registry),
                             "groups": len(registry.groups), "members": len(registry.groups.get("soak", ()))})

    async def stop(request: Request) -> JSONResponse:
        state["running"] = False
        return JSONResponse({"tick": state["tick"]})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.ensure_future(broadcast())
        yield
        state["running"] = False
        task.cancel()
        await gateway.shutdown()

    routes = [gateway.route("/hubs/soak"), Route("/soak/stats", stats), Route("/soak/stop", stop, methods=["POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(port: int, tick_ms: float) -> None:
    import uvicorn

    uvicorn.run(create_app(tick_ms), host="127.0.0.1", port=port, http="h11", ws="wsproto", log_level="warning",
                access_log=False, timeout_graceful_shutdown=2, backlog=4096)


# --- the load generator -------------------------------------------------------------------------


@dataclass
class Books:
    """What one load generator saw, summed over its clients (open and closed)."""

    ticks: int = 0
    tick_lost: int = 0
    tick_dups: int = 0
    sends: int = 0
    send_errors: int = 0
    send_mismatches: int = 0
    drops: int = 0
    churned: int = 0
    failed: int = 0
    started: int = 0
    by_transport: dict[str, int] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return self.ticks + 2 * self.sends  # a Send is a message each way


class Soaker:
    """One client and its own books."""

    def __init__(self, url: str, transport: str) -> None:
        from gateway.client import HubClient

        self.transport = transport
        self.client = HubClient(url, transport=transport, stateful_reconnect=True, start_timeout=20.0,
                                resume_timeout=20.0)
        self.client.on("tick", self.on_tick)
        self.first = 0
        self.last = 0
        self.ticks = 0
        self.lost = 0
        self.dups = 0
        self.k = 0
        self.busy = False
        self.closing = False

    def on_tick(self, n: int) -> None:
        self.ticks += 1
        if not self.first:
            self.first = self.last = n
        elif n <= self.last:
            self.dups += 1
        else:
            self.lost += n - self.last - 1
            self.last = n

    async def start(self) -> None:
        await self.client.start()
        await self.client.invoke("Join")

    async def send(self, books: Books) -> None:
        self.k += 1
        self.busy = True
        try:
            answer = await asyncio.wait_for(self.client.invoke("Send", self.k), 60)
        except Exception as exc:
            books.send_errors += 1
            print(json.dumps({"kind": "error", "error": f"Send({self.k}) on {self.transport}: {exc!r}"}), flush=True)
            return
        finally:
            self.busy = False
        books.sends += 1
        books.send_mismatches += answer != self.k

    async def idle(self, timeout: float = 60) -> None:
        """Wait for the Send in flight, if any: a client leaving on purpose lets its last call finish first."""
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def settle(self, books: Books) -> None:
        books.ticks += self.ticks
        books.tick_lost += self.lost
        books.tick_dups += self.dups


class Generator:
    """A load generator process: its share of the clients, drops, churn and sends, driven by the orchestrator."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = f"http://127.0.0.1:{args.port}/hubs/soak"
        self.rng = random.Random(args.seed * 1000 + args.index)
        self.books = Books()
        self.clients: list[Soaker] = []
        self.stopping = False
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def report(self, kind: str, **extra: Any) -> None:
        live = {t: 0 for t in TRANSPORTS}
        for soaker in self.clients:
            live[soaker.transport] += 1
        open_books = Books()
        for soaker in self.clients:
            soaker.settle(open_books)
        books = self.books
        line = {
            "kind": kind, "worker": self.args.index, "live": live,
            "ticks": books.ticks + open_books.ticks, "tick_lost": books.tick_lost + open_books.tick_lost,
            "tick_dups": books.tick_dups + open_books.tick_dups, **{k: v for k, v in asdict(books).items()
                                                                    if k not in ("ticks", "tick_lost", "tick_dups")},
            **extra,
        }
        print(json.dumps(line), flush=True)

    async def open_one(self, transport: str) -> None:
        soaker = Soaker(self.url, transport)
        try:
            await soaker.start()
        except Exception as exc:
            self.books.failed += 1
            print(json.dumps({"kind": "error", "worker": self.args.index, "error": f"start: {exc!r}"}), flush=True)
            return
        self.books.started += 1
        self.clients.append(soaker)
        self.spawn(self.send_loop(soaker))

    async def send_loop(self, soaker: Soaker) -> None:
        interval = self.args.send_ms / 1000
        await asyncio.sleep(self.rng.uniform(0, interval))
        while not soaker.closing and not self.stopping:
            await soaker.send(self.books)
            await asyncio.sleep(interval * self.rng.uniform(0.5, 1.5))

    async def ramp(self) -> None:
        mine = [TRANSPORTS[i % 4] for i in range(self.args.index, self.args.connections, self.args.workers)]
        semaphore = asyncio.Semaphore(25)

        async def one(transport: str) -> None:
            async with semaphore:
                await self.open_one(transport)

        await asyncio.gather(*(one(t) for t in mine))

    async def chaos(self) -> None:
        """Random drops (the stream is cut, the client resumes) and churn (a client leaves, a new one comes)."""
        share = 1 / self.args.workers
        while not self.stopping:
            await asyncio.sleep(0.1)
            if self.rng.random() < self.args.drops_per_s * share * 0.1 and self.clients:
                soaker = self.rng.choice(self.clients)
                if soaker.client.state.value == "connected":
                    self.books.drops += 1
                    self.spawn(soaker.client._transport.abort())
            if self.rng.random() < self.args.churn_per_s * share * 0.1 and self.clients:
                soaker = self.rng.choice(self.clients)
                self.clients.remove(soaker)
                self.spawn(self.replace(soaker))

    async def replace(self, soaker: Soaker) -> None:
        soaker.closing = True
        await soaker.idle()
        await self.close_one(soaker)
        self.books.churned += 1
        await self.open_one(soaker.transport)

    async def close_one(self, soaker: Soaker) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(soaker.client.close(), 10)
        if soaker.client.close_error is not None:
            self.books.failed += 1
        soaker.settle(self.books)

    async def run(self) -> None:
        await self.ramp()
        self.report("ramped")
        self.spawn(self.chaos())
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        reporter = asyncio.ensure_future(self.report_every(2.0))
        final = 0
        while True:
            line = (await reader.readline()).decode().split()
            if not line or line[0] == "stop":
                final = int(line[1]) if len(line) > 1 else 0
                break
        self.stopping = True
        await self.drain(final)
        reporter.cancel()
        for soaker in list(self.clients):
            soaker.closing = True
        await asyncio.gather(*(self.close_one(s) for s in self.clients))
        self.clients = []
        self.report("final", final_tick=final)

    async def report_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.report("progress")

    async def drain(self, final: int) -> None:
        """Wait for in-flight sends and for every client to have seen the last tick; what never comes is lost."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            behind = [s for s in self.clients if s.last < final or s.client.state.value != "connected"]
            if not behind and not self.tasks:
                break
            await asyncio.sleep(0.2)
        for soaker in self.clients:
            if soaker.first and soaker.last < final:
                soaker.lost += final - soaker.last
                soaker.last = final
            if soaker.client.state.value != "connected":
                self.books.failed += 1


def load(args: argparse.Namespace) -> None:
    asyncio.run(Generator(args).run())


# --- the orchestrator ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def http_json(port: int, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@dataclass
class Run:
    args: argparse.Namespace
    started: float = field(default_factory=time.monotonic)
    rss: list[tuple[float, float]] = field(default_factory=list)
    latest: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def total(self, key: str) -> int:
        return sum(int(line.get(key, 0)) for line in self.latest.values())

    def live(self) -> dict[str, int]:
        out = {t: 0 for t in TRANSPORTS}
        for line in self.latest.values():
            for name, count in line.get("live", {}).items():
                out[name] += count
        return out

    def messages(self) -> int:
        return self.total("ticks") + 2 * self.total("sends")


async def run(args: argparse.Namespace) -> int:
    port = free_port()
    python = sys.executable
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = await asyncio.create_subprocess_exec(
        python, "-m", "benchmarks.soak", "serve", "--port", str(port), "--tick-ms", str(args.tick_ms), env=env,
    )
    soak = Run(args)
    workers: list[asyncio.subprocess.Process] = []
    try:
        await wait_for_port(port, server)
        print(f"soak: server pid {server.pid} on 127.0.0.1:{port}; {args.connections} connections over "
              f"{len(TRANSPORTS)} transports in {args.workers} load generators; {args.duration:.0f} s", flush=True)
        for index in range(args.workers):
            workers.append(await asyncio.create_subprocess_exec(
                python, "-m", "benchmarks.soak", "load", "--port", str(port), "--index", str(index),
                "--workers", str(args.workers), "--connections", str(args.connections),
                "--send-ms", str(args.send_ms), "--drops-per-s", str(args.drops_per_s),
                "--churn-per-s", str(args.churn_per_s), "--seed", str(args.seed),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            ))
        readers = [asyncio.ensure_future(read_worker(w, soak)) for w in workers]
        await asyncio.wait_for(wait_ramped(soak, args.workers), 120)
        soak.started = time.monotonic()
        print(f"soak: {sum(soak.live().values())} connections up; the clock starts now", flush=True)
        await watch(soak, server.pid or 0, port)
        final = http_json(port, "/soak/stop", "POST")["tick"]
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(f"stop {final}\n".encode())
            await worker.stdin.drain()
        await asyncio.wait_for(asyncio.gather(*readers), 120)
        for worker in workers:
            await worker.wait()
        await asyncio.sleep(1.0)
        server_books = http_json(port, "/soak/stats")
        return conclude(soak, server_books, final)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
        if server.returncode is None:
            server.terminate()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait(), 10)
            if server.returncode is None:
                server.kill()


async def wait_for_port(port: int, server: asyncio.subprocess.Process) -> None:
    for _ in range(200):
        if server.returncode is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the server did not start")


async def read_worker(worker: asyncio.subprocess.Process, soak: Run) -> None:
    assert worker.stdout is not None
    while line := await worker.stdout.readline():
        data = json.loads(line)
        if data["kind"] == "error":
            soak.errors.append(data["error"])
            print(f"soak: worker error: {data['error']}", flush=True)
            continue
        soak.latest[data["worker"]] = data


async def wait_ramped(soak: Run, workers: int) -> None:
    while len(soak.latest) < workers:
        await asyncio.sleep(0.2)


async def watch(soak: Run, pid: int, port: int) -> None:
    next_print = 0.0
    last_messages, last_time = 0, 0.0
    while (elapsed := soak.elapsed()) < soak.args.duration:
        soak.rss.append((elapsed, rss_mb(pid)))
        if elapsed >= next_print:
            live = soak.live()
            messages = soak.messages()
            rate = (messages - last_messages) / max(elapsed - last_time, 1e-9) if last_time else 0.0
            last_messages, last_time = messages, elapsed
            server = http_json(port, "/soak/stats")
            print(f"[{elapsed:5.0f}s] conns {sum(live.values()):5d} (server {server['connections']:5d}) "
                  f"{' '.join(f'{t[:2]} {n}' for t, n in live.items())} | msgs {messages:9,d} ({rate:7,.0f}/s) | "
                  f"drops {soak.total('drops'):4d} churn {soak.total('churned'):3d} | lost "
                  f"{soak.total('tick_lost') + soak.total('send_errors')} dup {soak.total('tick_dups')} | "
                  f"server RSS {soak.rss[-1][1]:6.1f} MB", flush=True)
            next_print += 10
        await asyncio.sleep(2.0)
    soak.rss.append((soak.elapsed(), rss_mb(pid)))


def warm_rss(soak: Run) -> tuple[float, float]:
    """(when, RSS) at the end of warm-up: one minute in, or half the run if it is shorter."""
    warm = min(60.0, soak.args.duration / 2)
    return next(((t, r) for t, r in soak.rss if t >= warm), soak.rss[-1])


def conclude(soak: Run, server: dict[str, Any], final_tick: int) -> int:
    finals = soak.latest.values()
    total = {key: sum(int(line.get(key, 0)) for line in finals) for key in (
        "ticks", "tick_lost", "tick_dups", "sends", "send_errors", "send_mismatches", "drops", "churned", "failed",
        "started")}
    warm_at, warm = warm_rss(soak)
    end_at, end = soak.rss[-1]
    peak = max(r for _, r in soak.rss)
    growth = (end - warm) / warm if warm else 0.0
    lost = total["tick_lost"] + total["send_errors"] + server["send_gaps"]
    duplicated = total["tick_dups"] + server["send_dups"] + total["send_mismatches"]
    messages = total["ticks"] + 2 * total["sends"]
    checks = {
        "messages >= 100,000": messages >= 100_000,
        "lost == 0": lost == 0,
        "duplicated == 0": duplicated == 0,
        "failed connections == 0": total["failed"] == 0,
        f"RSS growth after warm-up < {soak.args.rss_allowance:.0%}": growth < soak.args.rss_allowance,
        "server holds no connection afterwards": server["connections"] == 0 and server["groups"] == 0,
    }
    figures = {
        "connections": soak.args.connections, "duration_s": soak.args.duration, "transports": list(TRANSPORTS),
        "clients_started": total["started"], "messages": messages, "ticks_delivered": total["ticks"],
        "sends_round_trips": total["sends"], "server_sends_seen": server["sends"], "last_tick": final_tick,
        "drops": total["drops"], "churned": total["churned"], "lost": lost, "lost_ticks": total["tick_lost"],
        "failed_sends": total["send_errors"], "server_send_gaps": server["send_gaps"], "duplicated": duplicated,
        "failed": total["failed"], "rss_warm_mb": round(warm, 1), "rss_warm_at_s": round(warm_at),
        "rss_end_mb": round(end, 1), "rss_end_at_s": round(end_at), "rss_peak_mb": round(peak, 1),
        "rss_growth": round(growth, 4), "server_connections_after": server["connections"],
    }
    print("\nsoak: figures")
    for key, value in figures.items():
        print(f"  {key:22s} {value}")
    print("soak: checks")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    for error in soak.errors[:10]:
        print(f"  error: {error}")
    passed = all(checks.values())
    if soak.args.report:
        write_report(Path(soak.args.report), soak, figures, checks)
        print(f"soak: wrote {soak.args.report}")
    print("soak: PASSED" if passed else "soak: FAILED", flush=True)
    return 0 if passed else 1


LABELS = {
    "connections": "connections held", "clients_started": "clients started (churn included)",
    "messages": "messages checked", "ticks_delivered": "broadcast ticks delivered", "sends_round_trips":
    "Send round trips (2 messages each)", "server_sends_seen": "Sends the server saw", "last_tick": "last tick sent",
    "drops": "streams cut (each followed by a resume)", "churned": "clients closed and replaced", "lost": "**lost**",
    "lost_ticks": "of which ticks never delivered", "failed_sends": "of which Sends never answered",
    "server_send_gaps": "of which Sends the server never got",
    "duplicated": "**duplicated**", "failed": "connections that failed", "rss_warm_mb": "server RSS after warm-up (MB)",
    "rss_end_mb": "server RSS at the end (MB)", "rss_peak_mb": "server RSS peak (MB)", "rss_growth":
    "RSS growth after warm-up", "server_connections_after": "connections the server holds afterwards",
}


def write_report(path: Path, soak: Run, figures: dict[str, Any], checks: dict[str, bool]) -> None:
    a = soak.args
    rss_points = " → ".join(f"{r:.0f}" for t, r in soak.rss[:: max(1, len(soak.rss) // 8)])

    def shown(key: str, value: Any) -> str:
        if key == "rss_growth":
            return f"{value:+.2%}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    rows = "\n".join(f"| {label} | {shown(key, figures[key])} |" for key, label in LABELS.items())
    rate = figures["messages"] / a.duration
    verdicts = "\n".join(f"| {name} | {'pass' if ok else 'FAIL'} |" for name, ok in checks.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""# Soak

`python -m benchmarks.soak` (opt-in: not part of the test suite). The server runs in its own process (uvicorn, h11 +
wsproto); {a.workers} load generator processes hold {a.connections} `HubClient`s with stateful reconnect, a quarter on
each transport (WebSockets, ServerSentEvents, ForeverFrame, LongPolling).

- The server broadcasts `tick(n)` to every client every {a.tick_ms:.0f} ms; each client checks it sees every n from
  its first, exactly once, in order, up to the last one sent.
- Each client invokes `Send(k)`, k = 1, 2, 3 ..., about every {a.send_ms:.0f} ms and checks the answer; the server
  checks each client's k arrive exactly once, in order.
- Chaos: about {a.drops_per_s:g} random stream cuts per second (the client resumes on the same connection; the
  replay fills the gap) and {a.churn_per_s:g} clients per second closed and replaced by new ones.
- Memory: the server's RSS after warm-up ({figures['rss_warm_at_s']} s) against its RSS at the end; allowance
  {a.rss_allowance:.0%}.

Last run: {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores (server and load generators on the same machine),
Python {sys.version.split()[0]}, seed {a.seed}, {a.duration:.0f} s after the ramp-up, {rate:,.0f} messages/s on average.

| figure | value |
|---|---|
{rows}

| check | result |
|---|---|
{verdicts}

Server RSS over the run (MB): {rss_points}
""")


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    serve_cmd = sub.add_parser("serve")
    serve_cmd.add_argument("--port", type=int, required=True)
    serve_cmd.add_argument("--tick-ms", type=float, default=500)
    load_cmd = sub.add_parser("load")
    for name, kind in [("port", int), ("index", int), ("workers", int), ("connections", int), ("send-ms", float),
                       ("drops-per-s", float), ("churn-per-s", float), ("seed", int)]:
        load_cmd.add_argument(f"--{name}", type=kind, required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load after the ramp-up")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--tick-ms", type=float, default=500, help="broadcast interval")
    parser.add_argument("--send-ms", type=float, default=2000, help="mean interval between a client's Sends")
    parser.add_argument("--drops-per-s", type=float, default=5.0)
    parser.add_argument("--churn-per-s", type=float, default=0.5)
    parser.add_argument("--rss-allowance", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", default=str(ROOT / "docs" / "SOAK.md"), help="where to write the figures")
    parser.add_argument("--no-report", dest="report", action="store_const", const="")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port, args.tick_ms)
        return 0
    if args.command == "load":
        load(args)
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
