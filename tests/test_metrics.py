"""``GET /metrics`` on the demo: the values of the SignalR-convention instruments and ours, on every transport."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from live import Live, serve
from prometheus_client.parser import text_string_to_metric_families

from gateway.client import HubClient
from gateway.demo.app import create_app

TRANSPORTS = ("WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SCOPE = ("otel_scope_name", "otel_scope_schema_url", "otel_scope_version")


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with serve(create_app(job_workers=0)) as server:
        yield server


async def scrape(live: Live) -> Samples:
    """Every sample of ``/metrics``, by name and labels (the OpenTelemetry scope labels left out)."""
    response = await asyncio.to_thread(httpx.get, live.url("/metrics"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = frozenset((k, v) for k, v in sample.labels.items() if k not in SCOPE)
            samples[sample.name, labels] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def per_transport(samples: Samples, name: str, **labels: str) -> dict[str, float]:
    return {t: value(samples, name, signalr_transport=t, **labels) for t in TRANSPORTS}


async def test_metrics_count_connections_messages_and_bytes_per_transport_then_the_closes(live: Live) -> None:
    before = await scrape(live)
    clients = [HubClient(live.url("/hubs/echo"), transport=t) for t in TRANSPORTS]
    for client in clients:
        await client.start()
        assert await client.invoke("Echo", "x" * 100) == "x" * 100
    during = await scrape(live)
    assert per_transport(during, "signalr_server_active_connections") == dict.fromkeys(TRANSPORTS, 1)
    assert value(during, "gateway_server_negotiates_total") - value(before, "gateway_server_negotiates_total") == 4
    for direction in ("receive", "transmit"):  # the invocation in, its completion out (pings etc. are not data)
        grown = {t: during_n - per_transport(before, "gateway_server_messages_total", network_io_direction=direction)[t]
                 for t, during_n in per_transport(during, "gateway_server_messages_total",
                                                  network_io_direction=direction).items()}
        assert grown == dict.fromkeys(TRANSPORTS, 1)
        sent = per_transport(during, "gateway_server_io_bytes_total", network_io_direction=direction)
        assert all(n - per_transport(before, "gateway_server_io_bytes_total",
                                     network_io_direction=direction)[t] > 100 for t, n in sent.items())

    for client in clients:
        await client.close()
    await asyncio.sleep(0.2)
    after = await scrape(live)
    assert per_transport(after, "signalr_server_active_connections") == dict.fromkeys(TRANSPORTS, 0)
    name, status = "signalr_server_connection_duration_seconds_count", "normal_closure"
    counted = {t: after_n - per_transport(before, name, signalr_connection_status=status)[t]
               for t, after_n in per_transport(after, name, signalr_connection_status=status).items()}
    assert counted == dict.fromkeys(TRANSPORTS, 1)
    # the closed connections' traffic stays in the counters
    assert per_transport(after, "gateway_server_messages_total", network_io_direction="receive") == per_transport(
        during, "gateway_server_messages_total", network_io_direction="receive")


async def test_refusals_are_counted_by_reason(live: Live) -> None:
    before = await scrape(live)
    await asyncio.to_thread(httpx.get, live.url("/hubs/echo?id=nope"))
    await asyncio.to_thread(httpx.post, live.url("/hubs/echo/negotiate?negotiateVersion=x"))
    after = await scrape(live)
    for reason in ("unknown_token", "malformed"):
        grown = value(after, "gateway_server_refused_total", gateway_reason=reason) - value(
            before, "gateway_server_refused_total", gateway_reason=reason)
        assert grown == 1, reason


async def test_a_stream_on_another_transport_counts_as_a_fallback(live: Live) -> None:
    before = await scrape(live)
    client = HubClient(live.url("/hubs/echo"), transport="WebSockets", stateful_reconnect=True)
    await client.start()
    await client.resume("LongPolling")
    assert await client.invoke("Echo", 1) == 1
    await client.close()
    after = await scrape(live)
    name = "gateway_server_fallbacks_total"
    labels = {"gateway_fallback_from": "WebSockets", "signalr_transport": "LongPolling"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    resumes = "gateway_server_resumes_total"
    assert value(after, resumes, signalr_transport="LongPolling") - value(
        before, resumes, signalr_transport="LongPolling") == 1


async def test_ready_and_health(live: Live) -> None:
    ready = await asyncio.to_thread(httpx.get, live.url("/ready"))
    health = await asyncio.to_thread(httpx.get, live.url("/health"))
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert health.status_code == 200 and health.json()["ok"] is True
