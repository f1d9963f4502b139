"""This process's connections of one hub, indexed by token, id, group and user."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from ..backplane import Target
from ..protocol.broadcast import Broadcast
from .connection import ServerConnection

log = logging.getLogger("gateway")


class GroupLimitExceeded(Exception):
    """A connection tried to join more groups than allowed."""


class Registry:
    """Looks connections up and delivers records to the local ones a target names."""

    def __init__(self, max_groups_per_connection: int = 100) -> None:
        self.by_token: dict[str, ServerConnection] = {}
        self.by_id: dict[str, ServerConnection] = {}
        self.groups: dict[str, set[str]] = {}
        self.users: dict[str, set[str]] = {}
        self.max_groups = max_groups_per_connection
        self._written = False  # a delivery wrote to the streams directly in this turn of the event loop

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[ServerConnection]:
        return iter(list(self.by_id.values()))

    def add(self, conn: ServerConnection) -> None:
        self.by_token[conn.token] = conn
        self.by_id[conn.id] = conn
        if conn.user is not None:
            self.users.setdefault(conn.user, set()).add(conn.id)

    def compact(self) -> None:
        """Rebuild the indexes at their current size (a dict keeps the size of its peak after deletions)."""
        self.by_token = dict(self.by_token)
        self.by_id = dict(self.by_id)

    def remove(self, conn: ServerConnection) -> None:
        self.by_token.pop(conn.token, None)
        self.by_id.pop(conn.id, None)
        for group in conn.groups:
            self._discard(self.groups, group, conn.id)
        conn.groups = frozenset()
        if conn.user is not None:
            self._discard(self.users, conn.user, conn.id)

    @staticmethod
    def _discard(index: dict[str, set[str]], key: str, connection_id: str) -> None:
        members = index.get(key)
        if members is not None:
            members.discard(connection_id)
            if not members:
                del index[key]

    def group_add(self, connection_id: str, group: str) -> bool:
        conn = self.by_id.get(connection_id)
        if conn is None:
            return False
        if group not in conn.groups and len(conn.groups) >= self.max_groups:
            raise GroupLimitExceeded(f"a connection may join at most {self.max_groups} groups")
        conn.groups = conn.groups | {group}
        self.groups.setdefault(group, set()).add(connection_id)
        return True

    def group_remove(self, connection_id: str, group: str) -> bool:
        conn = self.by_id.get(connection_id)
        if conn is None:
            return False
        conn.groups = conn.groups - {group}
        self._discard(self.groups, group, connection_id)
        return True

    def _ids(self, target: Target) -> Iterable[str]:
        if target.kind == "all":
            return list(self.by_id)
        index = self.groups if target.kind == "group" else self.users if target.kind == "user" else None
        if index is None:
            return target.names
        if len(target.names) == 1:
            return list(index.get(target.names[0], ()))
        return set().union(*(index.get(name, ()) for name in target.names))

    def _direct(self) -> bool:
        """Whether a delivery writes to idle streams at once. The first of a turn of the event loop does; those
        that follow in the same turn (a backlog: sends arrive faster than they are written) wake the streams
        instead, which then write what is queued together: one write of several records per stream."""
        if self._written:
            return False
        try:
            asyncio.get_running_loop().call_soon(self._turned)
        except RuntimeError:  # no loop (a test's direct call): nothing to coalesce with
            return True
        self._written = True
        return True

    def _turned(self) -> None:
        self._written = False

    @staticmethod
    def targets(target: Target, conn: ServerConnection) -> bool:
        """Whether ``target`` names ``conn``."""
        if conn.id in target.exclude:
            return False
        if target.kind == "all":
            return True
        if target.kind == "group":
            return not conn.groups.isdisjoint(target.names)
        if target.kind == "user":
            return conn.user in target.names
        return conn.id in target.names

    def deliver(self, target: Target, record: Broadcast, *, coalesce: bool = False) -> int:
        """Push ``record`` to every local connection ``target`` names, each in its hub protocol; returns how many.

        The connections of one protocol all get the same encoded object; one whose protocol cannot carry the
        call is skipped (and logged). An idle stream is written to from here, a busy one is woken. With
        ``coalesce`` (a backplane listener's backlog) only the first delivery of a turn of the event loop
        writes; the streams are woken for the others, and write them together (``_direct``). A publisher in
        this process is paced by its writes instead, as a raw socket's would be.
        """
        count = skipped = 0
        direct = self._direct() if coalesce else True
        exclude = target.exclude
        protocol: Any = None
        payload: Any = None
        for connection_id in self._ids(target):
            if exclude and connection_id in exclude:
                continue
            conn = self.by_id.get(connection_id)
            if conn is None:
                continue
            if conn.core.protocol is not protocol:
                protocol = conn.core.protocol
                payload = record.record(protocol)
            if payload is None:
                skipped += 1
                continue
            conn.push(payload, direct=direct)
            count += 1
        if skipped:
            log.warning("%r skipped %d connections: their hub protocol cannot carry its arguments", record, skipped)
        return count
