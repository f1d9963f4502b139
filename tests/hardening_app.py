"""The app the hardening suites serve in a process of its own (so that its memory can be read from /proc):
an echo hub at ``/hub`` with the gateway's default settings, except those named in ``GATEWAY_TEST_OPTIONS`` (JSON)."""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette

from gateway import Gateway, Settings
from gateway.demo.hubs import EchoHub

options = json.loads(os.environ.get("GATEWAY_TEST_OPTIONS", "{}"))
gateway = Gateway(EchoHub, name="hub", settings=Settings(**options))
app = Starlette(routes=[gateway.route("/hub")])
