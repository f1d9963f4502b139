"""Helpers for the hardening suites: any ASGI app on a real uvicorn (h11 + wsproto) in a thread, and raw clients.

The raw clients are deliberately dumb and synchronous (``http.client``, wsproto over a blocking socket): they send
exactly the bytes a test names, from a chosen source address, so that bad input reaches the server unaltered.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from gateway import Gateway
from gateway.protocol import hubjson

RS = hubjson.RS
HANDSHAKE = hubjson.encode_handshake_request()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Live:
    """A running server: ``url(path)``, the uvicorn ``Server``, and the gateways it serves by mount path."""

    port: int
    server: uvicorn.Server
    gateways: dict[str, Gateway] = field(default_factory=dict)
    in_flight: Counter[str] = field(default_factory=Counter)
    """Requests the app is still serving, by the ``id`` of their query (a handler blocked forever stays here)."""
    host: str = "127.0.0.1"
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/hub") -> str:
        return self.origin + path

    @property
    def open_sockets(self) -> int:
        """Client connections uvicorn still holds open (HTTP and WebSocket)."""
        return len(self.server.server_state.connections)

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``fn`` on the server's event loop and return its result (for pushes from a test)."""
        loop = self.loop
        assert loop is not None

        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)


@contextlib.contextmanager
def serve(
    app: Any, *, access_log: bool = False, log_level: str = "warning", http: str = "h11", ws: str = "wsproto",
) -> Iterator[Live]:
    """Serve ``app`` on a free port in a thread (``http`` and ``ws``: uvicorn's implementations); stop it on exit."""
    port = free_port()
    in_flight: Counter[str] = Counter()

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await app(scope, receive, send)
            return
        token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("id", [""])[0]
        in_flight[token] += 1
        try:
            await app(scope, receive, send)
        finally:
            in_flight[token] -= 1

    config = uvicorn.Config(
        counted, host="127.0.0.1", port=port, http=http, ws=ws, log_level=log_level,
        timeout_graceful_shutdown=1, access_log=access_log, lifespan="on",
    )
    server = uvicorn.Server(config)
    live = Live(port, server, in_flight=in_flight)
    started = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        live.loop = loop
        started.set()
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    started.wait(5)
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def serve_gateways(gateways: dict[str, Gateway], **options: Any) -> Iterator[Live]:
    """Serve gateways mounted at their paths (``{"/hub": Gateway(...)}``) in one Starlette app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        for gateway in gateways.values():
            await gateway.shutdown()

    app = Starlette(routes=[g.route(path) for path, g in gateways.items()], lifespan=lifespan)
    with serve(app, **options) as live:
        live.gateways.update(gateways)
        yield live


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- raw HTTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str | None:
        with contextlib.suppress(ValueError, AttributeError):
            value = json.loads(self.body)
            return value.get("error") if isinstance(value, dict) else None
        return None


def request(
    port: int, method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
    source: str = "127.0.0.1", timeout: float = 5.0,
) -> Reply:
    """One request on a fresh connection from ``source`` (any 127.0.0.0/8 address); the whole response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def negotiate(
    port: int, path: str = "/hub", *, query: str = "negotiateVersion=1", headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
) -> dict[str, Any]:
    reply = request(port, "POST", f"{path}/negotiate?{query}", headers=headers, source=source)
    assert reply.status == 200, (reply.status, reply.body)
    body: dict[str, Any] = reply.json()
    return body


def post(port: int, path: str, token: str, body: bytes | str, **kwargs: Any) -> Reply:
    data = body.encode() if isinstance(body, str) else body
    return request(port, "POST", f"{path}?id={token}", body=data, **kwargs)


# --- raw WebSocket ---------------------------------------------------------------------------------


class RawWebSocket:
    """A blocking WebSocket client over wsproto; ``recv_text`` returns whole text messages."""

    def __init__(self, port: int, target: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0,
                 rcvbuf: int | None = None, source: str = "127.0.0.1") -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.status = 0
        self.reject_body = b""
        self.accepted = False
        self.closed: CloseConnection | None = None
        self.pings: list[bytes] = []
        """The payloads of the WebSocket Ping frames received (each answered with its Pong)."""
        self.eof = False
        self._events: list[Event] = []
        self._text: list[str] = []
        extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target=target, extra_headers=extra)))
        while not self.accepted and not self.status:
            self._pump()
        if self.status:
            with contextlib.suppress(OSError):
                while True:
                    if not self._pump():
                        break

    def _pump(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.eof = self.eof or not data
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, RejectConnection):
                self.status = event.status_code
            elif isinstance(event, RejectData):
                self.reject_body += event.data
            else:
                self._events.append(event)
        return bool(data)

    @property
    def error(self) -> str | None:
        """The ``error`` of a refused upgrade's JSON body."""
        return Reply(self.status, {}, self.reject_body).error

    def send_text(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def recv_text(self) -> str | None:
        """The next whole text message; None once the server closed the socket."""
        while True:
            while self._events:
                event = self._events.pop(0)
                if isinstance(event, TextMessage):
                    self._text.append(event.data)
                    if event.message_finished:
                        text, self._text = "".join(self._text), []
                        return text
                elif isinstance(event, Ping):
                    self.pings.append(bytes(event.payload))
                    self.sock.sendall(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.closed = event
                    with contextlib.suppress(Exception):
                        self.sock.sendall(self.ws.send(event.response()))
                    return None
            if self.closed is not None or not self._pump():
                return None

    def records(self, until: Callable[[list[str]], bool], timeout: float = 5.0) -> list[str]:
        """Read records until ``until(records)`` is true or the socket closes."""
        reader = hubjson.RecordReader(1 << 24)
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while not until(out) and time.monotonic() < deadline:
            text = self.recv_text()
            if text is None:
                break
            out.extend(reader.feed(text))
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.close()


def parse_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(r) for r in hubjson.RecordReader(1 << 24).feed(text)]


# --- raw streams -----------------------------------------------------------------------------------


class RawStream:
    """A GET whose response is read as it streams (SSE, ForeverFrame, a held poll), over a blocking socket."""

    def __init__(self, port: int, target: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0,
                 rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.eof = False
        lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self._head: tuple[int, dict[str, str]] | None = None

    def _read_head(self) -> tuple[int, dict[str, str]]:
        if self._head is None:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.sock.recv(1)
                if not chunk:
                    break
                head += chunk
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1]) if status_line else 0
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
            self._head = status, headers
        return self._head

    @property
    def status(self) -> int:
        """The response's status (waits for the head: a held poll answers only when it ends)."""
        return self._read_head()[0]

    @property
    def headers(self) -> dict[str, str]:
        return self._read_head()[1]

    @property
    def error(self) -> str | None:
        """The ``error`` of a refusal's JSON body (the whole body is read)."""
        return Reply(self.status, self.headers, self.read_until(b"}", 2.0).rpartition(b"\r\n\r\n")[2]).error

    def read_until(self, needle: bytes, timeout: float = 5.0) -> bytes:
        """Raw (chunked) bytes until ``needle`` appears or the server closes; b"" on a timeout."""
        self._read_head()
        data = b""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        while needle not in data and time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                self.eof = True
                return data
            data += chunk
        return data

    def ended(self, timeout: float = 5.0) -> bool:
        """Whether the server ends the response (the last chunk, or the socket closing) within ``timeout``."""
        return b"0\r\n\r\n" in self.read_until(b"0\r\n\r\n", timeout) or self.eof

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.close()


def sse(port: int, path: str, token: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> RawStream:
    return RawStream(port, f"{path}?id={token}", headers={"Accept": "text/event-stream", **(headers or {})}, **kwargs)


def forever_frame(port: int, path: str, token: str, origin: str, **kwargs: Any) -> RawStream:
    return RawStream(port, f"{path}?id={token}&transport=ForeverFrame&origin={origin}&frame=f", **kwargs)


# --- hardening: a bystander's latency, held requests, a server in its own process --------------------------------


class Bystander:
    """A WebSocket connection that calls ``Echo`` every ``interval`` s, in a thread, while an attack runs beside it.

    ``worst`` is its slowest round trip: how long the server's event loop was held, plus one round trip.
    """

    def __init__(self, port: int, path: str = "/hub", interval: float = 0.02) -> None:
        token = negotiate(port, path)["connectionToken"]
        self.ws = RawWebSocket(port, f"{path}?id={token}", timeout=5.0)
        self.ws.send_text(HANDSHAKE)
        assert self.ws.records(lambda r: bool(r)) == ["{}"]
        self.interval = interval
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bystander", daemon=True)

    def _echo(self, tag: str) -> float:
        from gateway.protocol.messages import Invocation

        started = time.perf_counter()
        self.ws.send_text(hubjson.encode(Invocation("Echo", [tag], tag)))
        records = self.ws.records(lambda r: any(f'"invocationId":"{tag}"' in x for x in r), timeout=5.0)
        if not any(f'"result":"{tag}"' in r for r in records):
            raise AssertionError(f"the bystander's echo {tag} got no answer: {records}")
        return time.perf_counter() - started

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            count += 1
            try:
                self.latencies.append(self._echo(f"b{count}"))
            except (AssertionError, OSError):
                self.failures += 1
            self._stop.wait(self.interval)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.ws.close()


class HeldPost:
    """A POST that announces a body of ``length`` bytes, sends ``first`` bytes of it, and then holds."""

    def __init__(self, port: int, target: str, length: int, first: bytes, *, source: str = "127.0.0.1",
                 timeout: float = 5.0) -> None:
        self.sock = socket.socket()
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {length}\r\n\r\n"
        self.sent = 0
        with contextlib.suppress(OSError):  # a server that answered and closed early may refuse the rest
            self.sock.sendall(head.encode() + first)
            self.sent = len(first)

    def response(self, timeout: float) -> tuple[bytes, bool]:
        """What the server answered within ``timeout`` s, and whether it then closed the socket."""
        self.sock.settimeout(0.1)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return data, True
            if not chunk:
                return data, True
            data += chunk
        return data, False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.close()


def rss_bytes(pid: int) -> int:
    """A process's resident set size, from /proc/<pid>/status (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def serve_process(app: str, *, env: dict[str, str] | None = None, app_dir: str = "tests") -> Iterator[tuple[int, int]]:
    """Serve ``module:attribute`` with uvicorn (h11, wsproto) in a subprocess; yields (port, pid)."""
    import os
    import subprocess
    import sys

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--app-dir", app_dir, "--host", "127.0.0.1", "--port", str(port),
               "--http", "h11", "--ws", "wsproto", "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server process did not start")
            time.sleep(0.05)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def flood_negotiates(port: int, sources: list[str], each: int) -> Counter[int]:
    """``each`` negotiates from every source address, on one keep-alive connection per source, in threads."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def run(source: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
        local: Counter[int] = Counter()
        for _ in range(each):
            conn.request("POST", "/hub/negotiate?negotiateVersion=1")
            response = conn.getresponse()
            response.read()
            local[response.status] += 1
            if response.getheader("connection", "").lower() == "close":
                conn.close()
        conn.close()
        with lock:
            statuses.update(local)

    threads = [threading.Thread(target=run, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses
