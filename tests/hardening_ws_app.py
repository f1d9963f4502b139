"""The app the WebSocket hardening tests serve in a subprocess, as a user would: ``uvicorn hardening_ws_app:app``.

uvicorn's defaults apply (``--ws auto``, permessage-deflate on, ``ws_max_size`` 16 MiB) unless the test passes options.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette

from gateway import Gateway
from gateway.demo.hubs import EchoHub

logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")

hub = Gateway(EchoHub, name="echo")
app = Starlette(routes=[hub.route("/hubs/echo")])
