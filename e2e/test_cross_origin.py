"""A page on another origin embeds the client from the gateway's origin: all four transports work when that origin
is allowed (`--allow-origin`), and a page on an origin that is not allowed is refused with a clear error.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

from .conftest import STEP_MS, STEPS, GatewayFactory
from .harness import HARNESS_PATH, TRANSPORTS, Harness
from .servers import StaticOrigin


@pytest.fixture
def cors_gateway(gateway_server: GatewayFactory, second_origin: StaticOrigin) -> str:
    return gateway_server(allow_origins=[second_origin.origin])


def open_at(page: Page, origin: StaticOrigin, gateway: str) -> Harness:
    h = Harness.at_url(page, f"{origin.origin}{HARNESS_PATH}?gw={quote(gateway, safe='')}", gateway)
    assert page.evaluate("() => location.origin") == origin.origin != gateway
    return h


def start_job_from_backend(gateway: str, steps: int, step_ms: int) -> str:
    """The job is started the way the embedding site's backend would: server to server, not from the page."""
    request = urllib.request.Request(
        f"{gateway}/jobs",
        data=json.dumps({"steps": steps, "step_ms": step_ms}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202
        return str(json.load(response)["id"])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_allowed_origin_works_on_every_transport(
    page: Page,
    cors_gateway: str,
    second_origin: StaticOrigin,
    reference_run: Callable[..., list[dict[str, Any]]],
    transport: str,
) -> None:
    h = open_at(page, second_origin, cors_gateway)
    started = h.start(transports=[transport])
    assert started["transport"] == transport, started
    assert h.trace() == [(transport, "connected")]
    job = start_job_from_backend(cors_gateway, STEPS, STEP_MS)
    h.subscribe(job)
    h.wait_finished(job)
    assert h.job_sequence(job) == reference_run()
    assert h.page.evaluate("(x) => E2E.conn.invoke('Subscribe', x).then(() => 'ok')", job) == "ok"
    h.stop()


def test_origin_not_allowed_is_refused_with_a_clear_error(
    page: Page, cors_gateway: str, third_origin: StaticOrigin
) -> None:
    h = open_at(page, third_origin, cors_gateway)
    error = h.start_error(start_timeout=2000)
    assert re.search(r"origin|cors|not allowed|403", error, re.IGNORECASE), (
        f"the page cannot tell why it was refused: {error!r}"
    )
    assert all(a["outcome"] != "connected" for a in h.attempts()), h.attempts()
    streams = h.wire.streams()
    assert sum(streams.values()) == 0, f"no transport should even be tried after a refused negotiate: {streams}"
