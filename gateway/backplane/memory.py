"""The in-process backplane: the default, and the null object of the Redis one."""

from __future__ import annotations

from ..protocol.broadcast import Broadcast
from .base import LocalDelivery
from .messages import ForwardOp, Target


class InProcessBackplane:
    """Every connection lives in this process, so a publish is a local delivery."""

    healthy = True

    def __init__(self) -> None:
        self._hubs: dict[str, LocalDelivery] = {}

    async def start(self) -> None:
        return None

    async def announce(self, hub: str, token: str, connection_id: str) -> None:
        return None

    async def forget(self, hub: str, token: str) -> None:
        return None

    async def claim(self, hub: str, token: str) -> bool:
        return False

    async def peers(self) -> int:
        return 0

    async def held_elsewhere(self, hub: str, token: str) -> bool:
        return False

    async def forward(self, hub: str, token: str, op: ForwardOp, body: str = "") -> tuple[int, str | None] | None:
        return None

    def register(self, hub: str, local: LocalDelivery) -> None:
        self._hubs[hub] = local

    async def publish(self, hub: str, target: Target, record: Broadcast) -> None:
        local = self._hubs.get(hub)
        if local is not None:
            local.deliver(target, record)

    async def group_add(self, hub: str, connection_id: str, group: str) -> None:
        local = self._hubs.get(hub)
        if local is not None:
            local.group_add(connection_id, group)

    async def group_remove(self, hub: str, connection_id: str, group: str) -> None:
        local = self._hubs.get(hub)
        if local is not None:
            local.group_remove(connection_id, group)

    async def close(self) -> None:
        self._hubs.clear()
