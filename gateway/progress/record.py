"""A job's progress record, without I/O: states, pure transitions, events, snapshots and the store's rule.

Theory of operation
-------------------
A job goes Pending -> Processing -> Completed | Failed | Cancelled. Every change is an *event* (the
object the hub method ``progress`` carries) with the next ``seq`` (1, 2, 3 ... per job). A transition
takes a record and returns the next record and its event; it raises ``TransitionError`` on a final
record. Time is an argument (ms since the epoch), never read here.

A *publisher* (any process) numbers its events from its own view; a *store* (memory, Redis) keeps the
authoritative record and applies ``judge`` to each event it is given, in order:

- ``duplicate``: this writer already wrote this seq (a retry after a lost reply): ignored, acknowledged.
- ``final``: the stored record is final (the reaper failed it, or it was cancelled): refused.
- ``stale``: the seq is not the stored seq + 1 (another writer came first): refused; the publisher
  renumbers its pending events after the stored seq and sends them again.
- ``ok``: recorded, appended to the bounded log, and published.

Limits keep one job's record bounded: ``max_message`` characters of a message or an error (longer ones
are cut with "…" and the event says ``"truncated": true``), ``max_result`` bytes of a result's JSON (a
larger result is dropped: ``null`` and ``"truncated": true``), and ``max_log`` events of log (the oldest
go first; a snapshot of a cut log says ``"logTruncated": true``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

Event = dict[str, Any]
"""``{"jobId", "state", "percent", "step", "total", "message", "seq", "ts"}``, plus ``"error"`` and
``"result"`` in final states and ``"truncated": true`` when a limit cut something."""


class JobState(StrEnum):
    """The states of a job; ``FINAL`` holds the last three."""

    Pending = "Pending"
    Processing = "Processing"
    Completed = "Completed"
    Failed = "Failed"
    Cancelled = "Cancelled"


FINAL = frozenset({JobState.Completed, JobState.Failed, JobState.Cancelled})
ELLIPSIS = "…"


class TransitionError(RuntimeError):
    """A change that the record's state does not allow (any change of a final record)."""


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """How big one job's record may grow (see the module's docstring)."""

    max_log: int = 1_000
    max_message: int = 1_000
    max_result: int = 64 * 1024

    def __post_init__(self) -> None:
        if min(self.max_log, self.max_message, self.max_result) < 1:
            raise ValueError("record limits must be positive")


DEFAULT_LIMITS = RecordLimits()


def fit_text(text: object, limit: int) -> tuple[str, bool]:
    """``text`` as a string of at most ``limit`` characters (cut with "…"), and whether it was cut."""
    value = text if isinstance(text, str) else str(text)
    if len(value) <= limit:
        return value, False
    return value[: max(limit - 1, 0)] + ELLIPSIS, True


def fit_result(result: Any, limit: int) -> tuple[Any, bool]:
    """``result`` if its JSON has at most ``limit`` bytes, else None; and whether it was dropped.
    A result JSON cannot carry becomes its ``repr`` (cut to the limit)."""
    try:
        size = len(json.dumps(result, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError):
        return fit_text(repr(result), limit)
    return (result, False) if size <= limit else (None, True)


def _percent(value: float) -> float | int:
    clamped = min(max(float(value), 0.0), 100.0)
    return int(clamped) if clamped.is_integer() else round(clamped, 2)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What is known of a job: its last event's fields, plus the store's own (heartbeat, owner, cancel, log).

    ``log`` is the bounded step log, oldest first; ``logged`` counts every event ever logged, so that
    ``logged > len(log)`` says the log was cut. Publishers keep no log (``with_logged`` is the store's).
    """

    id: str
    state: JobState = JobState.Pending
    percent: float | int = 0
    step: int = 0
    total: int | None = None
    message: str = ""
    seq: int = 0
    result: Any = None
    error: str | None = None
    updated: float = 0.0
    heartbeat: float = 0.0
    owner: str | None = None
    cancel_requested: bool = False
    log: tuple[Event, ...] = ()
    logged: int = 0
    limits: RecordLimits = DEFAULT_LIMITS

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def event(self, truncated: bool = False) -> Event:
        """The ``progress`` payload for the record as it is."""
        event: Event = {"jobId": self.id, "state": self.state.value, "percent": self.percent, "step": self.step,
                        "total": self.total, "message": self.message, "seq": self.seq, "ts": self.updated}
        if self.final:
            event["error"], event["result"] = self.error, self.result
        if truncated:
            event["truncated"] = True
        return event

    def snapshot(self) -> Event:
        """What ``Subscribe`` returns: the current event (the last logged, as published), and the log."""
        current = self.log[-1] if self.log and self.log[-1]["seq"] == self.seq else self.event()
        return snapshot(current, list(self.log), self.logged)

    def with_logged(self, event: Event) -> JobRecord:
        """The record after a store accepted ``event``: its fields, and the event at the end of the log."""
        log = (*self.log[-(self.limits.max_log - 1):], event) if self.limits.max_log > 1 else (event,)
        return replace(self, **fields_of(event), log=log, logged=self.logged + 1, heartbeat=float(event["ts"]))


def snapshot(event: Event, log: list[Event], logged: int) -> Event:
    """A snapshot's shape: the current event's fields, ``log`` and ``logTruncated``."""
    return {**event, "log": log, "logTruncated": logged > len(log)}


def fields_of(event: Event) -> dict[str, Any]:
    """A record's fields from one of its events (what a store keeps of the last event)."""
    return {"state": JobState(event["state"]), "percent": event["percent"], "step": event["step"],
            "total": event.get("total"), "message": event["message"], "seq": event["seq"],
            "result": event.get("result"), "error": event.get("error"), "updated": float(event["ts"])}


def record_of(job_id: str, event: Event, *, owner: str | None = None, cancel: bool = False,
              heartbeat: float | None = None) -> JobRecord:
    """A record rebuilt from its last event (a store that keeps events, such as Redis)."""
    fields = fields_of(event)
    return JobRecord(job_id, **fields, owner=owner, cancel_requested=cancel,
                     heartbeat=fields["updated"] if heartbeat is None else heartbeat)


# --- transitions: (record, ...) -> (next record, event) ----------------------------------------------


def _changed(record: JobRecord, now: float, truncated: bool = False, **changes: Any) -> tuple[JobRecord, Event]:
    if record.final:
        raise TransitionError(f"job {record.id!r} is {record.state.value}: no change can follow")
    nxt = replace(record, **changes, seq=record.seq + 1, updated=now, heartbeat=now)
    return nxt, nxt.event(truncated)


def created(record: JobRecord, message: str, now: float, total: int | None = None) -> tuple[JobRecord, Event]:
    """The job is queued (Pending)."""
    text, cut = fit_text(message, record.limits.max_message)
    return _changed(record, now, cut, state=JobState.Pending, message=text, total=total)


def started(record: JobRecord, message: str, now: float, total: int | None = None) -> tuple[JobRecord, Event]:
    """A worker took the job (Processing, step 0)."""
    text, cut = fit_text(message, record.limits.max_message)
    return _changed(record, now, cut, state=JobState.Processing, message=text,
                    total=record.total if total is None else total, step=0)


def stepped(record: JobRecord, now: float, percent: float | None = None, message: str = "",
            step: int | None = None) -> tuple[JobRecord, Event]:
    """One more step (or step ``step``); ``percent`` defaults to step / total when the total is known."""
    number = record.step + 1 if step is None else int(step)
    if percent is None:
        percent = 100 * number / record.total if record.total else record.percent
    text, cut = fit_text(message, record.limits.max_message)
    return _changed(record, now, cut, state=JobState.Processing, step=number, percent=_percent(percent),
                    message=text)


def completed(record: JobRecord, now: float, result: Any = None, message: str = "Completed") -> tuple[JobRecord, Event]:
    """The job succeeded (100%)."""
    value, dropped = fit_result(result, record.limits.max_result)
    text, cut = fit_text(message, record.limits.max_message)
    step = record.total if record.total is not None and record.step < record.total else record.step
    return _changed(record, now, dropped or cut, state=JobState.Completed, percent=100, result=value,
                    message=text, step=step)


def failed(record: JobRecord, now: float, error: object, message: str | None = None) -> tuple[JobRecord, Event]:
    """The job failed with ``error`` (any object: its ``str``, cut to ``max_message``)."""
    text, cut = fit_text(error, record.limits.max_message)
    note, cut_note = fit_text(record.message if message is None else message, record.limits.max_message)
    return _changed(record, now, cut or cut_note, state=JobState.Failed, error=text, message=note)


def cancelled(record: JobRecord, now: float, message: str = "Cancelled") -> tuple[JobRecord, Event]:
    """The job stopped because a cancel was asked."""
    text, cut = fit_text(message, record.limits.max_message)
    return _changed(record, now, cut, state=JobState.Cancelled, message=text)


# --- the store's rule ------------------------------------------------------------------------------------


class Verdict(StrEnum):
    """What a store did with one event (see the module's docstring)."""

    ok = "ok"
    duplicate = "duplicate"
    final = "final"
    stale = "stale"
    alive = "alive"
    """Only for a reaper's event: the job's heartbeat is newer than the reaper's cutoff."""


def judge(stored_seq: int, stored_final: bool, writer_seq: int, seq: int) -> Verdict:
    """The store's verdict on an event numbered ``seq`` from a writer whose last accepted seq is ``writer_seq``
    (the Redis script applies the same rule)."""
    if seq <= writer_seq:
        return Verdict.duplicate
    if stored_final:
        return Verdict.final
    if seq != stored_seq + 1:
        return Verdict.stale
    return Verdict.ok


@dataclass(frozen=True, slots=True)
class Reply:
    """A store's answer to a batch of events: one verdict per event it looked at (it stops at the first
    ``final``, ``stale`` or ``alive``), the stored seq after it, and whether a cancel was requested."""

    verdicts: tuple[Verdict, ...]
    seq: int
    cancel: bool
