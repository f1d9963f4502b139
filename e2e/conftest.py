"""Fixtures of the end-to-end suite: one Chromium per session, real gateway servers, nginx, other origins.

Servers are started once per session for each distinct set of options and stopped at the end of the session.
On a failing test, the tail of every running gateway's log and the page's console are added to the report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from .harness import HARNESS_PATH, Harness, harness_html
from .servers import (
    CuttableRelay,
    GatewayProcess,
    NginxProcess,
    StaticOrigin,
    gateway_argv,
    log_tail,
    start_gateway,
    start_nginx_buffering_proxy,
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The harness document is served by page.route, so it has no IP address; Chromium then counts its origin as
    # public and blocks its WebSocket to 127.0.0.1 (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS). A page really
    # served from 127.0.0.1 is not blocked, so turning the check off changes nothing else here.
    "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessNullIpAddress",
]
# Assertions wait as long as actions do: a loaded 2-core machine can take more than expect's default 5 s.
expect.set_options(timeout=15_000)

SYSTEM_CHROMIUMS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

# Job parameters shared by the tests that compare runs with each other.
STEPS = 20
STEP_MS = 50

_servers: list[GatewayProcess] = []


# --------------------------------------------------------------------------------------------- browser


def chromium_candidates(playwright: Playwright) -> list[str | None]:
    """Where to find Chromium, best first. None means the browser Playwright manages itself.

    GATEWAY_E2E_CHROMIUM names a binary to use instead of all of these.
    """
    forced = os.environ.get("GATEWAY_E2E_CHROMIUM")
    if forced:
        return [forced]
    candidates: list[str | None] = []
    managed = playwright.chromium.executable_path
    if managed and os.path.exists(managed):
        candidates += [None, managed]
    for name in (*SYSTEM_CHROMIUMS, shutil.which("chromium"), shutil.which("chromium-browser")):
        if name and os.path.exists(name) and name not in candidates:
            candidates.append(name)
    return candidates


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the whole session: Playwright's own where installed, else the system one."""
    errors = []
    for executable in chromium_candidates(playwright_session):
        try:
            b = playwright_session.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # noqa: BLE001 - try the next candidate, report all at the end
            errors.append(f"{executable or 'playwright-managed chromium'}: {str(exc).splitlines()[0]}")
            continue
        yield b
        b.close()
        return
    tried = "\n  ".join(errors or ["none found"])
    pytest.fail(f"no Chromium could be launched (scripts/setup.sh installs one):\n  {tried}")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser context (its own cookies and its own pool of connections) per test."""
    ctx = browser.new_context()
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    request.node.stash[_CONSOLE] = console
    yield pg


# --------------------------------------------------------------------------------------------- servers

GatewayFactory = Callable[..., str]


@pytest.fixture(scope="session")
def gateway_server() -> Iterator[GatewayFactory]:
    """Factory: `gateway_server(transports=None, allow_origins=(), poll_timeout=None, extra_args=())` -> base URL.

    Starts `python -m gateway demo` on a free port with those options, once per session for each distinct set of
    options (a server that died is started again), and waits until it answers `GET /jobs/does-not-exist` with 404.
    The interpreter is $GATEWAY_E2E_PYTHON if set (to test another install), else this one.
    """
    started: dict[tuple[Any, ...], GatewayProcess] = {}

    def factory(
        transports: Sequence[str] | None = None,
        allow_origins: Sequence[str] = (),
        poll_timeout: float | None = None,
        extra_args: Sequence[str] = (),
    ) -> str:
        key = (tuple(transports or ()), tuple(allow_origins), poll_timeout, tuple(extra_args))
        server = started.get(key)
        if server is None or not server.alive():
            server = start_gateway(
                lambda port: gateway_argv(port, transports, allow_origins, poll_timeout, extra_args)
            )
            started[key] = server
            _servers.append(server)
        return server.base

    yield factory
    for server in started.values():
        server.stop()


@pytest.fixture(scope="session")
def gateway(gateway_server: GatewayFactory) -> str:
    """The base URL of a demo server with every transport and default options."""
    return gateway_server()


@pytest.fixture(scope="session")
def nginx_buffering_proxy() -> Iterator[Callable[[str], str]]:
    """Factory: `nginx_buffering_proxy(upstream_base)` -> base URL of an nginx in front of it.

    That nginx passes no WebSocket upgrade and holds every streaming response until it ends (servers.NGINX_CONF).
    """
    started: dict[str, NginxProcess] = {}

    def factory(upstream: str) -> str:
        proxy = started.get(upstream)
        if proxy is None or not proxy.alive():
            proxy = start_nginx_buffering_proxy(upstream)
            started[upstream] = proxy
        return proxy.base

    yield factory
    for proxy in started.values():
        proxy.stop()


def _render_harness(query: dict[str, list[str]]) -> str:
    return harness_html(query.get("gw", [""])[0])


@pytest.fixture(scope="session")
def second_origin() -> Iterator[StaticOrigin]:
    """Another origin (its own port) serving `/__harness?gw=GATEWAY`: the harness, loading the client from GATEWAY."""
    origin = StaticOrigin({HARNESS_PATH: _render_harness})
    yield origin
    origin.stop()


@pytest.fixture(scope="session")
def third_origin() -> Iterator[StaticOrigin]:
    """A third origin, never in any server's allowed list."""
    origin = StaticOrigin({HARNESS_PATH: _render_harness})
    yield origin
    origin.stop()


@pytest.fixture
def relay(gateway: str) -> Iterator[CuttableRelay]:
    """A TCP relay in front of the default gateway whose connections the test can cut."""
    port = int(gateway.rsplit(":", 1)[1])
    r = CuttableRelay(port)
    yield r
    r.stop()


# --------------------------------------------------------------------------------------------- harness


@pytest.fixture
def open_harness(page: Page) -> Callable[..., Harness]:
    """`open_harness(base)`: the harness page at `base`'s origin (served by page.route), client from `base`."""

    def opener(base: str, load_client: bool = True) -> Harness:
        return Harness.at_gateway(page, base, load_client)

    return opener


@pytest.fixture(scope="session")
def reference_run(browser: Browser, gateway: str) -> Callable[[int, int], list[dict[str, Any]]]:
    """`reference_run(steps, step_ms)`: a job's progress, normalized, received over forced WebSockets.

    The run every other transport, fallback and drop is compared with. Computed once per parameters.
    """
    cache: dict[tuple[int, int], list[dict[str, Any]]] = {}

    def run(steps: int = STEPS, step_ms: int = STEP_MS) -> list[dict[str, Any]]:
        if (steps, step_ms) not in cache:
            ctx = browser.new_context()
            try:
                h = Harness.at_gateway(ctx.new_page(), gateway)
                started = h.start(transports=["WebSockets"])
                assert started["transport"] == "WebSockets", started
                job = h.run_job(steps, step_ms)
                h.wait_finished(job, timeout=steps * step_ms / 1000 + 20)
                cache[(steps, step_ms)] = h.job_sequence(job)
                h.stop()
            finally:
                ctx.close()
        return cache[(steps, step_ms)]

    return run


# --------------------------------------------------------------------------------------------- failure reports

_CONSOLE = pytest.StashKey[list[str]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if report.failed and call.when in ("setup", "call"):
        console = item.stash.get(_CONSOLE, None)
        if console:
            report.sections.append(("browser console", "\n".join(console[-60:])))
        for server in _servers:
            state = "running" if server.alive() else f"exited {server.proc.returncode}"
            report.sections.append(
                (f"gateway {server.base} ({state}; {Path(server.log_path).name})", log_tail(server.log_path, 30))
            )
    return report
