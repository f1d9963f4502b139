"""GatewayRoute: the base path without a trailing slash, everything under it, and under a Mount."""

from __future__ import annotations

import pytest
from live import negotiate, request, serve
from starlette.applications import Starlette
from starlette.routing import Mount

from gateway import Gateway, Hub
from gateway.server.routing import route_path


@pytest.mark.parametrize(("path", "root_path", "expected"), [
    ("/hubs/a", "", "/hubs/a"),
    ("/api/hubs/a", "/api", "/hubs/a"),
    ("/api", "/api", ""),
    ("/api/", "/api", "/"),
    ("/apis/hubs/a", "/api", "/apis/hubs/a"),  # a sibling of the root path, not under it
    ("/other", "/api", "/other"),
])
def test_route_path(path: str, root_path: str, expected: str) -> None:
    assert route_path({"path": path, "root_path": root_path}) == expected


def test_a_gateway_route_inside_a_mount() -> None:
    gateway = Gateway(Hub)
    app = Starlette(routes=[Mount("/api", routes=[gateway.route("/hubs/a")])])
    with serve(app) as live:
        assert negotiate(live.port, "/api/hubs/a")["connectionId"]
        assert request(live.port, "GET", "/api/hubs/a/client.js").status == 200
        assert request(live.port, "POST", "/api/hubs/ab/negotiate").status == 404
        assert request(live.port, "POST", "/hubs/a/negotiate").status == 404
        live.call(gateway.shutdown)
