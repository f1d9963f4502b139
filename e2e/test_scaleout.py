"""Scale-out: three gateway processes behind a real nginx round-robin balancer (no sticky sessions), a
real redis-server, and the job worker in yet another process."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .servers import ARTIFACTS, GatewayProcess, free_port, gateway_argv, start_gateway, stop_process, wait_for_port

TRANSPORTS = ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]

BALANCER_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format timed '$msec $request_method $request_uri $status $upstream_addr $request_time';
  access_log {dir}/access.log timed;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream gateways {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 120s;
      proxy_next_upstream {next_upstream};
    }}
  }}
}}
"""


@dataclass
class Cluster:
    base: str
    redis_url: str
    gateways: list[GatewayProcess]

    def holders(self) -> list[GatewayProcess]:
        """The gateway processes that hold a connection of the jobs hub right now."""
        found = []
        for gw in self.gateways:
            if not gw.alive():
                continue
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{gw.base}/health", timeout=2) as r:
                if json.load(r)["connections"]["jobs"] > 0:
                    found.append(gw)
        return found


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
    directory = tempfile.mkdtemp(prefix="gw-redis-")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for_port(port, 10, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _balancer(upstreams: list[int], next_upstream: str = "error timeout http_502") -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="gw-lb-"))
    directory.chmod(0o755)
    port = free_port()
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=3s;" for p in upstreams)
    conf = directory / "nginx.conf"
    conf.write_text(BALANCER_CONF.format(dir=directory, port=port, servers=servers, next_upstream=next_upstream))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, 10, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
        with contextlib.suppress(OSError):  # which process answered each request, kept for a failure's reader
            shutil.copy(directory / "access.log", ARTIFACTS / f"access-{port}.log")
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _cluster() -> Iterator[Cluster]:
    """Three gateways (no job workers of their own), one worker process, Redis, and nginx round robin."""
    with _redis() as redis_url:
        extra = ["--redis", redis_url, "--job-workers", "0"]
        gateways = [start_gateway(lambda port: gateway_argv(port, extra_args=extra)) for _ in range(3)]
        ARTIFACTS.mkdir(exist_ok=True)
        log = (ARTIFACTS / "worker.log").open("wb")
        worker = subprocess.Popen([os.environ.get("GATEWAY_E2E_PYTHON") or sys.executable, "-m", "gateway", "worker",
                                   "--redis", redis_url], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            with _balancer([gw.port for gw in gateways]) as base:
                yield Cluster(base, redis_url, gateways)
        finally:
            stop_process(worker)
            log.close()
            for gw in gateways:
                gw.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One cluster for the tests that leave it whole."""
    with _cluster() as c:
        yield c


@pytest.fixture
def fresh_cluster() -> Iterator[Cluster]:
    """A cluster of its own, for a test that kills one of its processes."""
    with _cluster() as c:
        yield c


def _log_seqs(page: Page) -> list[int]:
    return [int(line.split()[0].lstrip("#")) for line in page.locator("gateway-job [part=log] li").all_inner_texts()]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_progress_message_arrives_through_the_balancer(page: Page, cluster: Cluster, transport: str) -> None:
    page.goto(f"{cluster.base}/?transport={transport}")
    expect(page.locator("#conn")).to_have_text("Connected")
    expect(page.locator("#transport")).to_have_text(transport)
    page.fill("#steps", "8")
    page.fill("#step_ms", "120")
    page.click("#start")
    expect(page.locator("gateway-job [part=state]")).to_have_text("Completed", timeout=20_000)
    assert _log_seqs(page) == list(range(1, 11))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_killing_the_holding_process_mid_job_loses_nothing(page: Page, fresh_cluster: Cluster, transport: str) -> None:
    cluster = fresh_cluster
    page.goto(f"{cluster.base}/?transport={transport}")
    expect(page.locator("#conn")).to_have_text("Connected")
    page.fill("#steps", "16")
    page.fill("#step_ms", "250")
    page.click("#start")
    page.wait_for_function("demo.job.log.length >= 4", timeout=15_000)
    holders: list[GatewayProcess] = []
    deadline = time.monotonic() + 5
    while not holders and time.monotonic() < deadline:  # a long-polling connection may be moving
        holders = cluster.holders()
    assert holders, "no gateway process holds the page's connection"
    holders[0].proc.kill()
    expect(page.locator("gateway-job [part=state]")).to_have_text("Completed", timeout=40_000)
    assert _log_seqs(page) == list(range(1, 19))
    time.sleep(0.2)
