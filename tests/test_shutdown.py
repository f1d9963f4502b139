"""Shutdown under plain uvicorn: SIGTERM ends every stream and held poll with a Close record that lets the client
reconnect elsewhere, and the process exits within 5 s without a traceback.

The server runs in a subprocess, started as the README says (``uvicorn app:app``, the app module being the README's
quick start written to a temporary directory), on each uvicorn implementation installed; ``gateway demo`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live import (
    HANDSHAKE,
    RawStream,
    RawWebSocket,
    forever_frame,
    free_port,
    negotiate,
    post,
    request,
    serve_gateways,
    sse,
)

from gateway import Gateway, Hub
from gateway.server.stopping import on_stop

ROOT = Path(__file__).resolve().parent.parent
EXIT_WITHIN = 5.0
CLOSE_RECORD = b'"type":7'
RECONNECT = b'"allowReconnect":true'

BARE_GATEWAY = '''
from gateway import Gateway, Hub

class Echo(Hub):
    async def echo(self, x: str) -> str:
        return x

app = Gateway(Echo)
'''


def readme_quick_start() -> str:
    """The Python block of the README's quick start: the app ``uvicorn app:app`` serves."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## Quick start", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's quick start has no python block"
    return match.group(1)


def uvicorn_command(*options: str) -> list[str]:
    script = Path(sys.executable).with_name("uvicorn")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "uvicorn"]
    return [*base, "app:app", *options]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")


def wait_listening(server: Server, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited at start:\n{server.output()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the server did not start:\n{server.output()}")


@contextlib.contextmanager
def started(command: list[str], cwd: Path, port: int) -> Iterator[Server]:
    """Run ``command`` (a server on ``port``) with its output in a file; kill it if the test left it running."""
    log = cwd / "server.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port, log)
    try:
        wait_listening(server)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


class Clients:
    """One raw client per transport on one hub, each past its handshake and waiting for data."""

    def __init__(self, port: int, path: str) -> None:
        self.port, self.path = port, path
        path = self.base = path or "/"  # a Gateway served as the whole app has its base at /
        self.ws = RawWebSocket(port, f"{path}?id={self._token()}")
        self.ws.send_text(HANDSHAKE)
        assert self.ws.records(lambda r: len(r) >= 1) == ["{}"]
        token = self._token()
        self.sse = sse(port, path, token)
        self._handshake(token, self.sse)
        token = self._token()
        self.ff = forever_frame(port, path, token, f"http://127.0.0.1:{port}")
        self._handshake(token, self.ff)
        token = self._token()
        assert request(port, "GET", f"{path}?id={token}").status == 200  # the first poll answers at once
        assert post(port, path, token, HANDSHAKE).status == 200
        assert request(port, "GET", f"{path}?id={token}").body == b"{}\x1e"
        self.poll = RawStream(port, f"{path}?id={token}", timeout=10.0)  # held until data or the end

    def _token(self) -> str:
        token: str = negotiate(self.port, self.path, query="negotiateVersion=1&useStatefulReconnect=true")[
            "connectionToken"]
        return token

    def _handshake(self, token: str, stream: RawStream) -> None:
        assert stream.status == 200
        assert post(self.port, self.base, token, HANDSHAKE).status == 200
        assert stream.read_until(b"{}") != b""

    def endings(self) -> dict[str, tuple[bool, bool]]:
        """Per transport: (a Close record allowing reconnection came, the transport ended)."""
        records = "".join(self.ws.records(lambda r: any('"type":7' in x for x in r))).encode()
        ws_ended = self.ws.recv_text() is None
        out = {"WebSockets": (CLOSE_RECORD in records and RECONNECT in records, ws_ended)}
        for name, stream in (("ServerSentEvents", self.sse), ("ForeverFrame", self.ff), ("LongPolling", self.poll)):
            data = stream.read_until(RECONNECT.replace(b'"', b'\\"') if name == "ForeverFrame" else RECONNECT)
            data = data.replace(b'\\"', b'"')
            ended = name == "LongPolling" or stream.ended(3.0)  # a poll's answer is its end
            out[name] = (CLOSE_RECORD in data and RECONNECT in data, ended)
        return out

    def close(self) -> None:
        for client in (self.ws, self.sse, self.ff, self.poll):
            client.close()


def stop_and_check(server: Server, path: str, sig: signal.Signals = signal.SIGTERM) -> None:
    """Connect one client per transport, send ``sig``, and check every ending and the exit."""
    clients = Clients(server.port, path)
    try:
        time.sleep(0.3)  # the held poll reaches the server
        sent = time.monotonic()
        server.process.send_signal(sig)
        endings = clients.endings()
        try:
            code = server.process.wait(max(0.1, EXIT_WITHIN - (time.monotonic() - sent)))
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - sent
    finally:
        clients.close()
    log = server.output()
    assert code is not None, f"still running {EXIT_WITHIN} s after {sig.name}:\n{log}"
    # uvicorn raises the signal again once it has stopped; uvicorn 0.29 ends a Ctrl+C with click's "Aborted!" and 1
    assert code in (0, -sig, 1 if sig is signal.SIGINT else 0), (code, log)
    assert endings == dict.fromkeys(endings, (True, True)), (endings, log)
    for bad in ("Traceback", "ASGI callable returned without completing response", "ERROR"):
        assert bad not in log, log
    print(f"exited {took:.2f} s after {sig.name}")


SERVERS = {
    "default": [],  # httptools and websockets when installed, as `uvicorn app:app` picks them
    "h11+wsproto": ["--http", "h11", "--ws", "wsproto"],
    "httptools+websockets": ["--http", "httptools", "--ws", "websockets"],
}


@pytest.mark.parametrize("stack", list(SERVERS))
def test_sigterm_readme_app(stack: str, tmp_path: Path) -> None:
    """The README's quick start (a Gateway mounted in a Starlette app), served with ``uvicorn app:app``."""
    (tmp_path / "app.py").write_text(readme_quick_start(), "utf-8")
    port = free_port()
    with started(uvicorn_command("--port", str(port), *SERVERS[stack]), tmp_path, port) as server:
        stop_and_check(server, "/hubs/progress")


def test_ctrl_c_readme_app(tmp_path: Path) -> None:
    """Ctrl+C (SIGINT) in a terminal does the same."""
    (tmp_path / "app.py").write_text(readme_quick_start(), "utf-8")
    port = free_port()
    with started(uvicorn_command("--port", str(port)), tmp_path, port) as server:
        stop_and_check(server, "/hubs/progress", signal.SIGINT)


def test_sigterm_bare_gateway(tmp_path: Path) -> None:
    """A Gateway served as the whole app: its own lifespan."""
    (tmp_path / "app.py").write_text(BARE_GATEWAY, "utf-8")
    port = free_port()
    with started(uvicorn_command("--port", str(port)), tmp_path, port) as server:
        stop_and_check(server, "")


def test_sigterm_demo(tmp_path: Path) -> None:
    """``gateway demo``."""
    port = free_port()
    command = [sys.executable, "-m", "gateway", "demo", "--port", str(port), "--log-level", "warning"]
    with started(command, tmp_path, port) as server:
        stop_and_check(server, "/hubs/echo")


async def test_the_gateway_hears_the_signal_and_the_server_still_does() -> None:
    """The handler ``on_stop`` chains in front of the server's: both run, the gateway's on its event loop."""
    seen: list[str] = []

    class Listener:
        def stopped(self) -> None:
            seen.append("gateway")

    listener = Listener()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append("server"))
    try:
        assert on_stop(listener.stopped)
        assert on_stop(listener.stopped)  # a second call adds nothing
        signal.raise_signal(signal.SIGTERM)
        assert seen == ["server"]  # the gateway's part waits for the loop
        await asyncio.sleep(0.01)
        assert seen == ["server", "gateway"]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_no_new_connection_once_stopping() -> None:
    """After shutdown, negotiate answers 503, so a client told to reconnect goes to another server."""
    gateway = Gateway(Hub)
    with serve_gateways({"/hub": gateway}) as live:
        negotiate(live.port, "/hub")
        live.call(gateway.shutdown)
        reply = request(live.port, "POST", "/hub/negotiate?negotiateVersion=1")
        assert (reply.status, reply.error) == (503, "the server is shutting down")
        assert reply.headers["retry-after"] == "5"
