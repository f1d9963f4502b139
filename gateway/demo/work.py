"""The demo's job, shared by its Celery task and its arq job: ``steps`` steps of ``step_ms`` each, the same step
messages as the in-process runner, and a failure at step ``fail_at`` if asked."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

from .jobs import STEP_MESSAGES

DONE = "Done: your trip is booked"


class StepFailed(Exception):
    """The demo's planned failure (``fail_at``)."""


def redis_url() -> str:
    """The Redis of the demo's queues and job records: ``GATEWAY_REDIS_URL`` (default: a local Redis)."""
    return os.environ.get("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379/0")


def lease() -> float:
    """Seconds a worker's heartbeat stays valid: ``GATEWAY_PROGRESS_LEASE`` (default 10)."""
    return float(os.environ.get("GATEWAY_PROGRESS_LEASE", "10"))


def plan(steps: int, fail_at: int | None) -> Iterator[tuple[int, int, str]]:
    """(step, percent, message) for each step; raises ``StepFailed`` at step ``fail_at``."""
    messages = itertools.cycle(STEP_MESSAGES)
    for step in range(1, steps + 1):
        message = next(messages)
        if fail_at is not None and step == fail_at:
            raise StepFailed(f"Step {step} failed: the payment provider declined the card")
        yield step, step * 100 // steps, message
