"""Keep connection tokens out of logs: the server's own access and WebSocket logs print request URLs."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"([?&](?:id|access_token)=)[^&\s\"']+")
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """``text`` with the value of every ``id=`` and ``access_token=`` query parameter replaced."""
    return _TOKEN.sub(r"\1[redacted]", text) if "=" in text else text


class RedactTokens(logging.Filter):
    """A filter that rewrites a record's message and arguments so that no token is printed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install(names: tuple[str, ...] = SERVER_LOGGERS) -> None:
    """Add the filter to the server's loggers, once."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
