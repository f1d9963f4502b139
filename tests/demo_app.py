"""The demo as the bounds suite serves it in a process of its own: one job worker, a 1 s body timeout."""

from __future__ import annotations

from gateway import Settings
from gateway.demo.app import create_app

app = create_app(job_workers=1, body_timeout=1.0, settings=Settings(poll_timeout=5.0))
