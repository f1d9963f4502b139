"""WebSocket input whose cost exceeds its size, and messages of unknown types, against real uvicorn servers.

Each server runs ``uvicorn hardening_ws_app:app`` in a subprocess, as a user would (uvicorn's defaults, or one named
WebSocket stack), so that its memory can be read from ``/proc``: the peak RSS (VmHWM, reset before each attack)
may grow by at most a stated multiple of what the attacker sent. A bystander connection keeps making Echo round
trips while the attack runs; the slowest of them must stay under 100 ms.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live import HANDSHAKE, RS, RawWebSocket, free_port, negotiate, post, request, wait_until

from gateway.protocol import ProtocolError

HERE = Path(__file__).parent
PATH = "/hubs/echo"
STALL_LIMIT = 0.100
"""The slowest bystander round trip allowed while an attack runs, in seconds."""
STACKS = ["auto", "wsproto", "websockets"]
"""uvicorn's WebSocket implementations: ``auto`` (the default: websockets-sansio when websockets is installed)."""


# --- a server in a subprocess -------------------------------------------------------------------------------------


@dataclass
class Server:
    """``uvicorn hardening_ws_app:app`` in a subprocess: its port, process and log file."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def memory(self) -> dict[str, int]:
        """VmRSS and VmHWM (the peak since the last ``reset_peak``), in bytes."""
        values: dict[str, int] = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(value.split()[0]) * 1024
        return values

    def reset_peak(self) -> int:
        """Reset the peak RSS to the current RSS (Linux ``clear_refs``); returns the current RSS."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        return self.memory()["VmRSS"]

    def peak_growth(self, since: int) -> int:
        return self.memory()["VmHWM"] - since

    def logged(self, text: str) -> bool:
        return text in self.log.read_text()


@contextlib.contextmanager
def uvicorn_server(tmp_path: Path, stack: str) -> Iterator[Server]:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "hardening_ws_app:app", "--app-dir", str(HERE), "--port", str(port),
            "--log-level", "warning", "--ws", stack]
    log = tmp_path / f"server-{stack}.log"
    with log.open("wb") as out:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(port, proc, log)
    try:
        if not wait_until(lambda: _listening(port) or proc.poll() is not None, timeout=20) or proc.poll() is not None:
            raise RuntimeError(f"the server did not start: {log.read_text()}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


@pytest.fixture(params=STACKS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    if request.param == "websockets":
        pytest.importorskip("websockets")
    with uvicorn_server(tmp_path, request.param) as running:
        yield running


# --- clients --------------------------------------------------------------------------------------------------------


def websocket(port: int) -> RawWebSocket:
    """A handshaken WebSocket connection to the echo hub."""
    token = negotiate(port, PATH)["connectionToken"]
    ws = RawWebSocket(port, f"{PATH}?id={token}", timeout=30)
    ws.send_text(HANDSHAKE)
    assert ws.records(lambda r: bool(r)) == ["{}"]
    return ws


def echo(n: int | str) -> str:
    record = {"type": 1, "invocationId": str(n), "target": "Echo", "arguments": [n]}
    return json.dumps(record, separators=(",", ":")) + RS


class Bystander:
    """Echo round trips on their own WebSocket connection, in a thread, until stopped; ``worst`` is the slowest."""

    def __init__(self, port: int) -> None:
        self.ws = websocket(port)
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.perf_counter()
            self.ws.send_text(echo(n))
            if not self.ws.records(lambda r: bool(r), timeout=10):
                self.times.append(float("inf"))
                return
            self.times.append(time.perf_counter() - started)
            time.sleep(0.005)

    def __enter__(self) -> Bystander:
        self._thread.start()
        assert wait_until(lambda: len(self.times) >= 3)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.1)
        self._stop.set()
        self._thread.join(15)
        self.ws.close()

    @property
    def worst(self) -> float:
        return max(self.times)


# --- 1. compressed messages -----------------------------------------------------------------------------------------


def deflate_bomb(inflated: int) -> bytes:
    """A permessage-deflate payload (RFC 7692: raw deflate, the final 00 00 ff ff removed) of one Echo record whose
    argument is ``inflated`` bytes of "a": about a thousandth of that on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [compressor.compress(b'{"type":1,"target":"Echo","arguments":["')]
    block = b"a" * (1 << 20)
    for _ in range(inflated >> 20):
        parts.append(compressor.compress(block))
    parts += [compressor.compress(b'"]}' + RS.encode()), compressor.flush(zlib.Z_SYNC_FLUSH)]
    return b"".join(parts)[:-4]


def client_frame(payload: bytes, *, compressed: bool) -> bytes:
    """One masked text frame, FIN set, RSV1 set when ``compressed``."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0xC1 if compressed else 0x81, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0xC1 if compressed else 0x81, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0xC1 if compressed else 0x81, 0x80 | 127, length)
    keystream = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(length, "big")
    return head + mask + masked


class DeflateClient:
    """A raw WebSocket client that offers permessage-deflate, as every browser does."""

    def __init__(self, port: int) -> None:
        token = negotiate(port, PATH)["connectionToken"]
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET {PATH}?id={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        lines = head.decode("latin-1").lower().split("\r\n")
        assert lines[0].startswith("http/1.1 101"), lines
        self.extensions = [line.partition(":")[2].strip() for line in lines if line.startswith("sec-websocket-ext")]
        self.sock.sendall(client_frame(HANDSHAKE.encode(), compressed=False))

    def close_code(self, timeout: float = 10.0) -> int | None:
        """The code of the server's close frame (skipping data frames), or None if the socket just ended."""
        self.sock.settimeout(timeout)
        data = b""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                data += chunk
                while len(data) >= 2:
                    length = data[1] & 0x7F
                    offset = 2 + {126: 2, 127: 8}.get(length, 0)
                    if length >= 126:
                        length = int.from_bytes(data[2:offset], "big")
                    if len(data) < offset + length:
                        break
                    if data[0] & 0x0F == 0x8:
                        return int.from_bytes(data[offset:offset + 2], "big")
                    data = data[offset + length:]
        return None

    def close(self) -> None:
        self.sock.close()


def test_permessage_deflate_is_not_negotiated(server: Server) -> None:
    client = DeflateClient(server.port)
    try:
        assert client.extensions == []
    finally:
        client.close()


def test_a_compression_bomb_costs_nothing(server: Server) -> None:
    """200 KB that would inflate to 200 MiB: refused as a protocol error (a compressed frame nobody agreed to)."""
    bomb = deflate_bomb(200 << 20)
    assert len(bomb) < 256 * 1024
    with Bystander(server.port) as bystander:
        client = DeflateClient(server.port)
        before = server.reset_peak()
        with contextlib.suppress(OSError):
            client.sock.sendall(client_frame(bomb, compressed=True))
        code = client.close_code()
        client.close()
        time.sleep(0.2)
        growth = server.peak_growth(before)
    assert code in (1002, None)  # wsproto may reset the socket before its close frame is read
    assert growth < 4 * len(bomb), f"peak RSS grew {growth / 2**20:.1f} MiB for {len(bomb)} bytes sent"
    assert bystander.worst < STALL_LIMIT, f"a bystander's round trip took {bystander.worst * 1000:.0f} ms"


def test_a_message_over_the_frame_limit_closes_with_1009(server: Server) -> None:
    ws = websocket(server.port)
    try:
        fits = echo(1) * (1_000_000 // len(echo(1)))
        ws.send_text(fits)
        assert len(ws.records(lambda r: len(r) >= fits.count(RS), timeout=60)) == fits.count(RS)
        over = fits + echo(2) * (48_576 // len(echo(2)) + 1)  # one record more than 1 MiB
        ws.send_text(over)
        records = ws.records(lambda r: False, timeout=5)
        assert records == [json.dumps({"type": 7, "error": f"WebSocket message of {len(over)} bytes exceeds the limit "
                                       "of 1048576 bytes"}, separators=(",", ":"))]  # none of its records ran
        assert ws.closed is not None and ws.closed.code == 1009
    finally:
        ws.close()
    assert wait_until(lambda: server.logged(f"closed: WebSocket message of {len(over)} bytes exceeds the limit"))


def test_a_message_over_the_limit_is_refused_before_its_records(server: Server) -> None:
    """4 MB of tiny records, under uvicorn's 16 MiB ws_max_size: refused whole by max_frame_size (1 MiB)."""
    text, _ = many_records(4_000_000, ids=False)
    attacker = websocket(server.port)
    try:
        with Bystander(server.port) as bystander:
            before = server.reset_peak()
            attacker.send_text(text + echo("end"))
            records = attacker.records(lambda r: False, timeout=30)
            growth = server.peak_growth(before)
    finally:
        attacker.close()
    assert [json.loads(r)["type"] for r in records] == [7]
    assert bystander.worst < STALL_LIMIT, f"a bystander's round trip took {bystander.worst * 1000:.0f} ms"
    assert growth < 3 * len(text), f"peak RSS grew {growth / 2**20:.1f} MiB for {len(text)} bytes"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("x" * 100, None),
        ("é" * 50, None),  # 100 bytes
        ("é" * 51, "WebSocket message of 102 bytes"),
        ("x" * 101, "WebSocket message of 101 bytes"),
        ("é" * 101, "WebSocket message of at least 101 bytes"),  # not encoded to be measured
        ("😀" * 25, None),
        ("😀" * 26, "WebSocket message of 104 bytes"),
    ],
    ids=["ascii-100", "e-acute-100", "e-acute-102", "ascii-101", "e-acute-101-chars", "emoji-100", "emoji-104"],
)
def test_the_message_size_counts_utf8_bytes(text: str, error: str | None) -> None:
    from gateway.transports.websockets import _check_size  # here: the module imports on code without it

    if error is None:
        _check_size(text, 100)
        return
    with pytest.raises(ProtocolError, match=f"^{error} exceeds the limit of 100 bytes$") as info:
        _check_size(text, 100)
    assert info.value.ws_code == 1009


# --- 2. one message of very many records ----------------------------------------------------------------------------


def many_records(size: int, *, ids: bool) -> tuple[str, int]:
    """About ``size`` bytes of tiny Echo invocations (with invocation ids or without); the text and its count."""
    template = '{"type":1,"invocationId":"%d","target":"Echo","arguments":[%d]}' if ids else \
        '{"type":1,"target":"Echo","arguments":[%d]}'
    parts: list[str] = []
    total = count = 0
    while total < size:
        record = (template % ((count, count) if ids else count)) + RS
        parts.append(record)
        total += len(record)
        count += 1
    return "".join(parts), count


MULTIPLE = 4
"""Peak RSS growth allowed while one message of many records is handled, as a multiple of its size (the server
stack alone holds the message two or three times: its bytes, its buffer and its text)."""


def test_one_websocket_message_of_many_records(server: Server) -> None:
    text, count = many_records(1_000_000, ids=True)
    attacker = websocket(server.port)
    try:
        with Bystander(server.port) as bystander:
            before = server.reset_peak()
            started = time.monotonic()
            attacker.send_text(text)
            replies = attacker.records(lambda r: len(r) >= count, timeout=30)
            elapsed = time.monotonic() - started
            growth = server.peak_growth(before)
    finally:
        attacker.close()
    assert len(replies) == count and json.loads(replies[-1])["result"] == count - 1
    assert elapsed < 10
    assert growth < MULTIPLE * len(text), f"peak RSS grew {growth / 2**20:.1f} MiB for {len(text)} bytes"
    assert bystander.worst < STALL_LIMIT, f"a bystander's round trip took {bystander.worst * 1000:.0f} ms"


@pytest.mark.parametrize("stack", ["auto"])
def test_one_post_body_of_many_records(stack: str, tmp_path: Path) -> None:
    with uvicorn_server(tmp_path, stack) as server:
        text, count = many_records(1_000_000, ids=False)
        token = negotiate(server.port, PATH)["connectionToken"]
        poll = f"{PATH}?id={token}"
        assert request(server.port, "GET", poll).status == 200  # the first poll answers at once
        assert post(server.port, PATH, token, HANDSHAKE).status == 200
        assert request(server.port, "GET", poll).body == ("{}" + RS).encode()
        with Bystander(server.port) as bystander:
            before = server.reset_peak()
            reply = post(server.port, PATH, token, text + echo("last"), timeout=30)
            growth = server.peak_growth(before)
        assert reply.status == 200
        completion = '{"type":3,"invocationId":"last","result":"last"}' + RS
        assert request(server.port, "GET", poll).body == completion.encode()
    assert growth < MULTIPLE * len(text), f"peak RSS grew {growth / 2**20:.1f} MiB for {len(text)} bytes"
    assert bystander.worst < STALL_LIMIT, f"a bystander's round trip took {bystander.worst * 1000:.0f} ms"


# --- 8. unknown message types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["auto"])
def test_unknown_message_types_are_ignored_and_logged_once(stack: str, tmp_path: Path) -> None:
    with uvicorn_server(tmp_path, stack) as server:
        ws = websocket(server.port)
        try:
            ws.send_text('{"type":42,"future":true}' + RS + echo(1) + '{"type":10}' + RS)
            ws.send_text('{"type":0}' + RS + echo(2))
            replies = [json.loads(r) for r in ws.records(lambda r: len(r) >= 2)]
            assert [r.get("result") for r in replies] == [1, 2]
        finally:
            ws.close()
        assert wait_until(lambda: server.logged("ignored a message of unknown type 42"))
        assert server.log.read_text().count("ignored a message of unknown type") == 1
