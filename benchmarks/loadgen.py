"""A load generator process: holds lean clients and obeys JSON-line commands on stdin.

The controller starts several of these (a process may hold at most about 19,000 sockets). Each
command is one JSON object on a line; each answer is one JSON object on a line of stdout, with the
process's CPU seconds so far. Commands:

- ``open``: ``target``, ``n``, ``concurrency`` -> opened, failed, seconds
- ``rtt``: ``target``, ``warmup``, ``count`` -> samples (ms) on one new client
- ``join``: ``group``, ``n`` -> the first n held clients join the group
- ``fanout_begin`` / ``fanout_wait``: ``count``, ``wait`` -> latencies of the group's bursts
- ``alive``: how many held clients are alive; ``echo_all``: how many answer an echo now
- ``close``: close every held client
"""

from __future__ import annotations

import array
import asyncio
import base64
import contextlib
import json
import os
import sys
import time
import traceback
from typing import Any

from gateway.client.protocols import HttpPool, LeanError

from .clients import CLIENTS, BenchClient

HOST = "127.0.0.1"
KEEPALIVE = 15.0
PAYLOAD = "x" * 32


class Fanout:
    """Collects the latency of every burst each member receives, and checks their order."""

    def __init__(self, members: int) -> None:
        self.latencies = array.array("f")
        self.received = [0] * members
        self.out_of_order = 0
        self.done = asyncio.Event()
        self.expected = 0
        self.complete = 0

    def receiver(self, index: int) -> Any:
        def on_burst(data: dict[str, Any]) -> None:
            self.latencies.append(time.time() - data["t"])
            count = self.received[index] + 1
            self.received[index] = count
            if data["i"] != count:
                self.out_of_order += 1
            if count == self.expected:
                self.complete += 1
                if self.complete == len(self.received):
                    self.done.set()
        return on_burst


class Worker:
    def __init__(self, port: int) -> None:
        self.port = port
        self.pool = HttpPool(HOST, port, size=4)
        self.clients: list[BenchClient] = []
        self.members: list[BenchClient] = []
        self.fanout: Fanout | None = None
        self.ticker: asyncio.Task[None] | None = None

    async def keepalive(self) -> None:
        """One task for every client: each 1 s, one fifteenth of them sends its heartbeat."""
        tick = 0
        while True:
            await asyncio.sleep(KEEPALIVE / 15)
            tick += 1
            for client in self.clients[tick % 15::15]:
                if client.alive and client.keepalive_needed:
                    client.keepalive()

    async def open(self, target: str, n: int, concurrency: int = 100) -> dict[str, Any]:
        kind = CLIENTS[target]
        gate = asyncio.Semaphore(concurrency)
        failed: list[str] = []
        start = time.perf_counter()

        async def one() -> None:
            async with gate:
                client = kind(self.pool)
                try:
                    await asyncio.wait_for(client.connect(), 30)
                    self.clients.append(client)
                except Exception as exc:  # counted and reported
                    failed.append(repr(exc)[:200])
                    with contextlib.suppress(Exception):
                        client.close()

        await asyncio.gather(*(one() for _ in range(n)))
        if self.ticker is None:
            self.ticker = asyncio.ensure_future(self.keepalive())
        return {"opened": n - len(failed), "failed": len(failed), "errors": failed[:3],
                "seconds": time.perf_counter() - start, "held": len(self.clients)}

    async def rtt(self, target: str, warmup: int, count: int) -> dict[str, Any]:
        client = CLIENTS[target](self.pool)
        await asyncio.wait_for(client.connect(), 30)
        try:
            for _ in range(warmup):
                await client.echo(PAYLOAD)
            samples = array.array("f")
            clock = time.perf_counter
            for _ in range(count):
                t0 = clock()
                value = await client.echo(PAYLOAD)
                samples.append((clock() - t0) * 1000.0)
                if value != PAYLOAD:
                    raise AssertionError(f"echo returned {value!r}")
        finally:
            client.close()
        return {"samples": base64.b64encode(samples.tobytes()).decode()}

    async def join(self, group: str, n: int, concurrency: int = 100) -> dict[str, Any]:
        """The first ``n`` held clients join ``group``; a dead client, or one not answering in 10 s, is not a member."""
        gate = asyncio.Semaphore(concurrency)

        async def one(client: BenchClient) -> BenchClient:
            if not client.alive:
                raise LeanError("the connection is no longer alive")
            async with gate:
                await asyncio.wait_for(client.join(group), 10)
            return client

        results = await asyncio.gather(*(one(c) for c in self.clients[:n]), return_exceptions=True)
        self.members = [r for r in results if isinstance(r, BenchClient)]
        errors = [repr(r)[:200] for r in results if isinstance(r, BaseException)]
        return {"joined": len(self.members), "errors": errors[:3], "failed": len(errors)}

    async def fanout_begin(self, count: int) -> dict[str, Any]:
        fanout = Fanout(len(self.members))
        fanout.expected = count
        self.fanout = fanout
        for index, client in enumerate(self.members):
            client.on_burst = fanout.receiver(index)
        if not self.members:
            fanout.done.set()
        return {"members": len(self.members)}

    async def fanout_wait(self, wait: float) -> dict[str, Any]:
        fanout = self.fanout
        assert fanout is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fanout.done.wait(), wait)
        for client in self.members:
            client.on_burst = _ignore
        self.fanout = None
        return {
            "delivered": len(fanout.latencies), "expected": fanout.expected * len(fanout.received),
            "complete": fanout.complete, "out_of_order": fanout.out_of_order,
            "latencies": base64.b64encode(fanout.latencies.tobytes()).decode(),
        }

    async def alive(self) -> dict[str, Any]:
        return {"alive": sum(1 for c in self.clients if c.alive), "held": len(self.clients)}

    async def echo_all(self, concurrency: int = 200, timeout: float = 60.0) -> dict[str, Any]:
        gate = asyncio.Semaphore(concurrency)

        async def one(client: BenchClient) -> bool:
            async with gate:
                return await asyncio.wait_for(client.echo(PAYLOAD), 30) == PAYLOAD

        results = await asyncio.wait_for(
            asyncio.gather(*(one(c) for c in self.clients), return_exceptions=True), timeout)
        return {"answered": sum(1 for r in results if r is True), "held": len(self.clients)}

    async def close(self) -> dict[str, Any]:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close()
        closed = len(self.clients)
        self.clients = []
        self.members = []
        self.pool.close()
        return {"closed": closed}


def _ignore(data: dict[str, Any]) -> None:
    pass


async def serve(port: int) -> None:
    worker = Worker(port)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
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


def main() -> None:
    port = int(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(port))
    else:
        uvloop.run(serve(port))


if __name__ == "__main__":
    main()
