"""What an admin page shows, as JSON-able data: per hub the counts, connections and groups; the recent fallbacks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..app import Gateway
from ..server import metrics
from ..server.view import ConnectionInfo


def _connection(info: ConnectionInfo) -> dict[str, Any]:
    return {
        "id": info.id, "transport": info.transport, "attached": info.attached, "user": info.user,
        "groups": sorted(info.groups), "age": round(info.age, 1), "resumes": info.resumes,
        "messagesIn": info.wire.messages_in, "messagesOut": info.wire.messages_out,
        "bytesIn": info.wire.bytes_in, "bytesOut": info.wire.bytes_out,
    }


def _hub(gateway: Gateway) -> dict[str, Any]:
    infos = gateway.connections.snapshot()
    counts = gateway.connections.counts()
    groups = Counter(group for info in infos for group in info.groups)
    return {
        "name": gateway.name, "total": counts.total, "byTransport": counts.by_transport, "pending": counts.pending,
        "draining": gateway.draining is not None, "connections": [_connection(info) for info in infos],
        "groups": dict(sorted(groups.items(), key=lambda item: (-item[1], item[0]))),
    }


def snapshot(gateways: Sequence[Gateway]) -> dict[str, Any]:
    """Every hub of ``gateways``, and the latest fallbacks and failed starts (newest first)."""
    fallbacks = [{"id": f.connection_id, "tried": f.tried, "to": f.to, "reason": f.reason}
                 for f in reversed(metrics.recent_fallbacks)]
    return {"hubs": [_hub(gateway) for gateway in gateways], "fallbacks": fallbacks}
