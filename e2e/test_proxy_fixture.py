"""The buffering nginx really buffers: the fallback to long polling behind it proves something only if it does.

Checked against a tiny streaming upstream written here, so the check does not depend on the gateway: an SSE stream
and a forever-frame stream deliver nothing (not even headers) through the proxy while they are open, a short
response still arrives, and a WebSocket upgrade reaches the upstream as a plain GET.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from .servers import wait_for_port

STREAM_HEADERS = (
    "Cache-Control: no-cache, no-store, no-transform\r\nX-Accel-Buffering: no\r\n"
    "Content-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Upstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    seen_headers: list[str]


class _Handler(socketserver.StreamRequestHandler):
    server: _Upstream

    def handle(self) -> None:
        request_line = self.rfile.readline().decode()
        headers = []
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            headers.append(line.decode().strip())
        self.server.seen_headers.append(request_line.strip() + " | " + " | ".join(headers))
        path = request_line.split()[1]
        try:
            if path.startswith(("/sse", "/frame")):
                self._stream(path)
            else:
                time.sleep(0.3)
                body = b'{"type":6}\x1e'
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
        except OSError:
            pass

    def _stream(self, path: str) -> None:
        sse = path.startswith("/sse")
        ctype = "text/event-stream" if sse else "text/html; charset=utf-8"
        self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n{STREAM_HEADERS}\r\n".encode())
        self.wfile.write(_chunk(b":\n\n" if sse else b"<!DOCTYPE html><html><body>" + b" " * 2048))
        for i in range(40):
            self.wfile.write(_chunk(b"data: %d\n\n" % i if sse else b"<script>g(%d)</script>" % i))
            self.wfile.flush()
            time.sleep(0.1)
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def upstream() -> Iterator[_Upstream]:
    server = _Upstream(("127.0.0.1", 0), _Handler)
    server.seen_headers = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _received_within(port: int, path: str, seconds: float, extra: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode())
        got = b""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            got += data
        return got


@pytest.mark.parametrize("path", ["/sse", "/frame"])
@pytest.mark.parametrize("encoding", ["", "Accept-Encoding: gzip\r\n"], ids=["plain", "gzip"])
def test_streams_are_held_until_they_end(
    upstream: _Upstream, nginx_buffering_proxy: Callable[[str], str], path: str, encoding: str
) -> None:
    direct_port = upstream.server_address[1]
    direct = _received_within(direct_port, path, 0.3, encoding)
    assert b"200 OK" in direct and len(direct) > 100, "the upstream itself must stream"

    proxy = nginx_buffering_proxy(f"http://127.0.0.1:{direct_port}")
    port = int(proxy.rsplit(":", 1)[1])
    wait_for_port(port, 5)
    assert _received_within(port, path, 1.0, encoding) == b"", "the proxy let part of an open stream through"


def test_short_responses_pass(upstream: _Upstream, nginx_buffering_proxy: Callable[[str], str]) -> None:
    proxy = nginx_buffering_proxy(f"http://127.0.0.1:{upstream.server_address[1]}")
    port = int(proxy.rsplit(":", 1)[1])
    close = "Connection: close\r\n"
    got = _received_within(port, "/poll", 2.0, "Accept-Encoding: gzip\r\n" + close)
    assert got.startswith(b"HTTP/1.1 200") and b"Content-Encoding: gzip" in got, got[:300]
    got = _received_within(port, "/poll", 2.0, close)
    assert got.startswith(b"HTTP/1.1 200") and b'{"type":6}\x1e' in got, got[-300:]


def test_websocket_upgrade_is_not_passed(upstream: _Upstream, nginx_buffering_proxy: Callable[[str], str]) -> None:
    proxy = nginx_buffering_proxy(f"http://127.0.0.1:{upstream.server_address[1]}")
    port = int(proxy.rsplit(":", 1)[1])
    upstream.seen_headers.clear()
    upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    got = _received_within(port, "/poll?ws=1", 2.0, upgrade + "Sec-WebSocket-Version: 13\r\nConnection: close\r\n")
    assert not got.startswith(b"HTTP/1.1 101"), got[:200]
    seen = [h for h in upstream.seen_headers if h.startswith("GET /poll?ws=1 ")]
    assert seen, upstream.seen_headers
    assert "upgrade: websocket" not in seen[0].lower(), seen[0]
