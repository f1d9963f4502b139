"""Real processes and small network helpers the end-to-end suite runs against.

Everything binds to 127.0.0.1 on a free port, keeps its files in a temporary directory, and is stopped by the
fixture that started it. Nothing here imports Playwright: these helpers are plain Python, usable from a shell too.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def http_status(url: str, timeout: float = 2.0, method: str = "GET") -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within `grace` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------- gateway server


@dataclass
class GatewayProcess:
    """One `python -m gateway demo` subprocess."""

    base: str
    port: int
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc)


def gateway_argv(
    port: int,
    transports: Sequence[str] | None = None,
    allow_origins: Iterable[str] = (),
    poll_timeout: float | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    python = os.environ.get("GATEWAY_E2E_PYTHON") or sys.executable
    argv = [python, "-m", "gateway", "demo", "--host", "127.0.0.1", "--port", str(port)]
    if transports:
        argv += ["--transports", ",".join(transports)]
    for origin in allow_origins:
        argv += ["--allow-origin", origin]
    if poll_timeout is not None:
        argv += ["--poll-timeout", f"{poll_timeout:g}"]
    return argv + list(extra_args)


def start_gateway(
    argv_for_port: Callable[[int], list[str]], startup_timeout: float = 20.0, env: Mapping[str, str] | None = None
) -> GatewayProcess:
    """Start the demo server (with `env` added to this environment) and wait until `GET /jobs/does-not-exist`
    answers 404."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    argv = argv_for_port(port)
    log_path = ARTIFACTS / f"gateway-{port}.log"
    with log_path.open("wb") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        log.flush()
        environ = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environ, start_new_session=True
        )
    server = GatewayProcess(f"http://127.0.0.1:{port}", port, argv, log_path, proc)
    deadline = time.monotonic() + startup_timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"gateway exited with code {proc.returncode} during startup:\n{log_tail(log_path)}"
            )
        try:
            status = http_status(f"{server.base}/jobs/does-not-exist", timeout=1.0)
        except OSError as exc:
            last = repr(exc)
        else:
            if status == 404:
                return server
            last = f"HTTP {status}"
        time.sleep(0.1)
    server.stop()
    raise TimeoutError(
        f"gateway did not answer GET /jobs/does-not-exist with 404 within {startup_timeout:.0f} s "
        f"(last: {last}):\n{log_tail(log_path)}"
    )


# --------------------------------------------------------------------------------------------- nginx

NGINX_CONF = """\
# A proxy that behaves like the worst corporate proxy the gateway must survive:
#  * it does not pass WebSocket upgrades (a plain HTTP/1.1 GET goes upstream, as with any nginx left at defaults);
#  * it buffers every streaming response until the response ends, whatever the upstream asks for.
# Two layers make the second point hold for every client: the inner server forces gzip (having hidden the
# upstream's Content-Encoding and ignored its X-Accel-Buffering), and gzip with proxy buffering on holds the whole
# response, headers included, until upstream closes it; the outer server asks the inner one for gzip on the client's
# behalf and gunzips for a client that did not ask for it. Short responses (negotiate, long polls, POSTs) pass, late.
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  proxy_http_version 1.1;
  proxy_read_timeout 300s;
  proxy_send_timeout 300s;
  proxy_buffering on;
  proxy_ignore_headers X-Accel-Buffering Cache-Control Expires;
  proxy_buffer_size 64k;
  proxy_buffers 64 64k;
  proxy_busy_buffers_size 1m;

  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://unix:{dir}/inner.sock:;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_set_header Accept-Encoding gzip;
      gunzip on;
    }}
  }}
  server {{
    listen unix:{dir}/inner.sock;
    location / {{
      proxy_pass {upstream};
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_hide_header Content-Encoding;
      proxy_hide_header X-Accel-Buffering;
      gzip on;
      gzip_proxied any;
      gzip_min_length 0;
      gzip_comp_level 1;
      gzip_buffers 64 64k;
      gzip_types text/event-stream text/plain application/json application/javascript;
    }}
  }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not found:
        raise RuntimeError("nginx is not installed (scripts/setup.sh installs it)")
    return found


@dataclass
class NginxProcess:
    base: str
    port: int
    directory: Path
    proc: subprocess.Popen[bytes]
    tmp: tempfile.TemporaryDirectory[str] = field(repr=False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, grace=3.0)
        self.tmp.cleanup()


def start_nginx_buffering_proxy(upstream: str) -> NginxProcess:
    """Start nginx in front of `upstream` (http://host:port) with NGINX_CONF; see its comment."""
    # A short directory: the inner server listens on a unix socket, whose path is limited to 107 bytes.
    tmp = tempfile.TemporaryDirectory(prefix="gw-nginx-", dir="/tmp" if os.path.isdir("/tmp") else None)
    directory = Path(tmp.name)
    directory.chmod(0o755)  # started as root, nginx's workers run as an unprivileged user and must reach it
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, port=port, upstream=upstream.rstrip("/")))
    argv = [nginx_binary(), "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    check = subprocess.run(argv + ["-t"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        tmp.cleanup()
        raise RuntimeError(f"nginx -t rejected the configuration:\n{check.stderr}")
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True
    )
    nginx = NginxProcess(f"http://127.0.0.1:{port}", port, directory, proc, tmp)
    try:
        wait_for_port(port, 10.0, proc)
    except Exception as exc:
        error_log = log_tail(directory / "error.log")
        nginx.stop()
        raise RuntimeError(f"nginx did not start: {exc}\n{error_log}") from exc
    return nginx


# --------------------------------------------------------------------------------------------- static origin

PageRenderer = Callable[[dict[str, list[str]]], str]


class StaticOrigin:
    """A tiny HTTP server on its own port: another web origin that serves test pages.

    `pages` maps a path to a function of the query (parse_qs) that returns HTML.
    """

    def __init__(self, pages: dict[str, PageRenderer]) -> None:
        pages_ = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                parts = urlsplit(self.path)
                render = pages_.get(parts.path)
                if render is None:
                    self.send_error(404)
                    return
                body = render(parse_qs(parts.query)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="static-origin", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------------------------- cuttable relay


class CuttableRelay:
    """A TCP relay between the browser and the gateway that the test can cut, like a network drop.

    Chromium's offline emulation does not end streams already open (an EventSource keeps receiving), so a drop in
    the middle of a stream is made here instead: `cut()` resets every connection open through the relay, in both
    directions, with whatever bytes were in flight lost; `outage(s)` also refuses new connections for `s` seconds;
    `stall()` keeps every open connection open but forwards nothing more on it, either way (a proxy or NAT that
    lost its state: a WebSocket that stays "open" and carries nothing). New connections work as before.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cuts = 0
        self.connections_total = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._stalled: set[asyncio.StreamWriter] = set()
        self._down_until = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cuttable-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("relay did not start")
        self.origin = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ready.set()
        self._loop.run_forever()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._down_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections_total += 1
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        self._writers -= {writer, up_writer}
        self._stalled -= {writer, up_writer}

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if writer in self._stalled:
                    continue
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.transport.abort()

    async def _cut(self, down_for: float) -> int:
        self._down_until = time.monotonic() + down_for
        open_now = list(self._writers)
        for writer in open_now:
            writer.transport.abort()
        self.cuts += 1
        return len(open_now) // 2

    async def _stall(self) -> int:
        self._stalled |= self._writers
        return len(self._writers) // 2

    def stall(self) -> int:
        """Forward nothing more on the connections open now (they stay open); returns how many there were."""
        return asyncio.run_coroutine_threadsafe(self._stall(), self._loop).result(5)

    def cut(self) -> int:
        """Reset every connection open now; returns how many there were."""
        return self.outage(0.0)

    def outage(self, seconds: float) -> int:
        """Reset every open connection and refuse new ones for `seconds`; returns how many were open."""
        return asyncio.run_coroutine_threadsafe(self._cut(seconds), self._loop).result(5)

    @property
    def open_connections(self) -> int:
        return len(self._writers) // 2

    def stop(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@dataclass(eq=False)
class _Link:
    """One connection through a `SilentCutRelay`: its two writers and the request line it carries now."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    request: bytes = b""
    muted: bool = False


METHODS = (b"GET ", b"POST ", b"DELETE ", b"OPTIONS ")


class SilentCutRelay(CuttableRelay):
    """A `CuttableRelay` that can also cut a stream the way only the server sees.

    `silent_cut(marker)` closes the server side of every connection whose current request line contains `marker`
    and forwards nothing more to the browser, whose socket stays open: no end, no reset, no error. That is what a
    forward proxy cutting an idle response may leave a page with: an iframe that stays "loading" and fires nothing.
    """

    def __init__(self, upstream_port: int) -> None:
        self._links: set[_Link] = set()
        super().__init__(upstream_port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections_total += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._forward(link, reader, up_writer, True), self._forward(link, up_reader, writer, False)
        )
        self._links.discard(link)
        self._writers -= {writer, up_writer}

    @staticmethod
    async def _forward(link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        try:
            while data := await reader.read(65536):
                if up and data.startswith(METHODS):
                    link.request = data.split(b"\r\n", 1)[0]
                if link.muted:
                    continue  # swallowed: the browser's socket stays open and hears nothing more
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof() and not (link.muted and writer is link.client):
                writer.write_eof()
        except (OSError, RuntimeError):
            if not (link.muted and writer is link.client):
                writer.transport.abort()

    async def _silent_cut(self, marker: bytes) -> int:
        links = [link for link in self._links if marker in link.request and not link.muted]
        for link in links:
            link.muted = True
            link.server.close()
        self.cuts += len(links)
        return len(links)

    def silent_cut(self, marker: bytes) -> int:
        """Cut silently every connection whose request line contains `marker`; returns how many."""
        return asyncio.run_coroutine_threadsafe(self._silent_cut(marker), self._loop).result(5)
