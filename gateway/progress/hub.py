"""``ProgressHub``: the hub side of job progress.

``Subscribe(jobId)`` joins the job's group, then reads the snapshot (the current event, the step log and
its ``seq``): every later step reaches the caller as a ``progress`` call, and the client drops any whose
``seq`` is at or below the last it applied. ``Watch(jobId)`` streams the same events instead (the log
first, then live ones, ending at a final state). ``Cancel(jobId)`` asks the job to stop. ``authorize``
decides who may do any of it with a job (by default: anyone for a job without an owner, else its owner).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import ClassVar

from ..hub import Hub, HubError
from .publisher import local_store
from .record import FINAL, Event
from .store import ProgressStore, job_group, raise_if_cancelled

log = logging.getLogger("gateway.progress")

MAX_JOB_ID = 128
WATCH_POLL = 1.0
"""Seconds a ``Watch`` waits for a notice before it reads the log again anyway."""


def valid_job_id(value: object) -> str:
    """A job id from a client: a string of 1 to MAX_JOB_ID characters (HubError otherwise)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_JOB_ID:
        raise HubError(f"a job id is a string of 1 to {MAX_JOB_ID} characters")
    return value


def unknown(job_id: str) -> HubError:
    return HubError(f"unknown job '{job_id}'")


class ProgressHub(Hub):
    """A hub of job progress on ``store`` (by default this process's in-memory store; see ``bind``)."""

    server_methods = frozenset({"authorize"})
    store: ClassVar[ProgressStore | None] = None

    @classmethod
    def bind(cls, store: ProgressStore) -> type[ProgressHub]:
        """A subclass of this hub on ``store`` (a ``RedisStore``, or a ``MemoryStore`` of its own)."""
        return type(cls.__name__, (cls,), {"store": store})

    @property
    def progress(self) -> ProgressStore:
        """The store; a MemoryStore not yet attached delivers through this hub from now on."""
        store = type(self).store or local_store()
        if not store.attached():
            store.attach(self.clients)
        return store

    async def authorize(self, job_id: str, user: str | None) -> bool:
        """Whether ``user`` (None: anonymous) may subscribe to, watch and cancel job ``job_id``.

        Override it; by default anyone may for a job without an owner (or an unknown job: it is then
        refused as unknown), and only its owner for a job created with one.
        """
        record = await self.progress.load(job_id)
        return record is None or record.owner is None or record.owner == user

    async def _allowed(self, value: object) -> str:
        job_id = valid_job_id(value)
        if not await self.authorize(job_id, self.context.user):
            raise HubError("not allowed")
        return job_id

    async def subscribe(self, job_id: str) -> Event:
        """Join the job's group, then return its snapshot."""
        job_id = await self._allowed(job_id)
        connection_id, group = self.context.connection_id, job_group(job_id)
        await self.groups.add(connection_id, group)
        snap = await self.progress.snapshot(job_id)
        if snap is None:
            await self.groups.remove(connection_id, group)
            raise unknown(job_id)
        return snap

    async def unsubscribe(self, job_id: str) -> None:
        await self.groups.remove(self.context.connection_id, job_group(valid_job_id(job_id)))

    async def cancel(self, job_id: str) -> bool:
        """Ask the job to stop; False when it is already final."""
        job_id = await self._allowed(job_id)
        if await self.progress.load(job_id) is None:
            raise unknown(job_id)
        return await self.progress.cancel(job_id)

    async def watch(self, job_id: str) -> AsyncIterator[Event]:
        """A stream of the job's events: the logged ones first, then each change, to a final state."""
        job_id = await self._allowed(job_id)
        store = self.progress
        snap = await store.snapshot(job_id)
        if snap is None:
            raise unknown(job_id)
        events = [*snap.pop("log"), {k: v for k, v in snap.items() if k != "logTruncated"}]
        last, state = 0, ""
        while state not in FINAL:
            for event in events:
                if event["seq"] > last:
                    last, state = event["seq"], event["state"]
                    yield event
            if state in FINAL:
                return
            notice = store.notice(job_id)
            try:
                events = await store.tail(job_id, last)
            except Exception as exc:  # the store is down for a while: the stream waits for it
                log.warning("connection %s: Watch(%s) cannot read the store (%r)", self.context.connection_id,
                            job_id, exc)
                events = []
            raise_if_cancelled()
            if not events:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(notice.wait(), WATCH_POLL)
