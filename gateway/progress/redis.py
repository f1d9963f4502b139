"""Job records in Redis, written atomically with their publish on the Redis backplane.

One Lua script (``WRITE``) judges a batch of events by ``record.judge``'s rule and, for each accepted
one, in one step: updates the record (a hash), appends to the log (a list, ``LTRIM`` to ``max_log``),
sets the TTL, keeps the set of running jobs the reaper reads, and ``PUBLISH``es the backplane ``Send``
of the ``progress`` call to the job's group (encoded here, with ``backplane.messages``, exactly as a
backplane node would). A subscriber joins the group, then reads the record: an event is either in what
it read, or published after the read and so delivered to it; never neither, and a page drops the both.

Keys, for hub H and job J under the backplane's prefix P: ``P:progress:H:J`` (the record: ``event``,
``seq``, ``state``, ``hb``, ``owner``, ``cancel``, ``logged`` and ``w:<writer>``), ``P:progress:H:J:log``,
``P:progress:H:active`` (Processing jobs by heartbeat) and the channel ``P:progress:H:changed`` (job ids,
for ``Watch``). ``RedisStore`` is the hub's (asyncio); ``RedisWriter`` is a sync publisher's (Celery).

Pub/sub does not replay what a gateway missed while its backplane was resubscribing after a Redis outage;
the record does. ``backplane.on_recovered(store.recover)`` makes the backplane, once subscribed again,
deliver to this process's subscribers of each job every logged event since the outage began (``SINCE``),
and the final event of a job that ended; pages drop what they already applied, by ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import redis as syncredis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..backplane import HubClients
from ..backplane.messages import Send, Target, encode
from ..backplane.redis import Outage
from ..protocol.broadcast import Broadcast
from .record import DEFAULT_LIMITS, FINAL, Event, JobRecord, RecordLimits, Reply, Verdict, record_of, snapshot
from .store import LEASE, Canceller, Reaper, call_canceller, job_group

log = logging.getLogger("gateway.progress")

TTL = 24 * 3600
STORE_ERRORS = (RedisError, OSError)

WRITE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stored = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local function is_final(s) return s == 'Completed' or s == 'Failed' or s == 'Cancelled' end
local final = is_final(redis.call('HGET', KEYS[1], 'state') or '')
local wfield = 'w:' .. ARGV[2]
local wseq = tonumber(redis.call('HGET', KEYS[1], wfield) or '0')
local cutoff = tonumber(ARGV[5])
local verdicts = {}
local wrote = false
local i = 8
while i <= #ARGV do
  local seq = tonumber(ARGV[i])
  local v = 'ok'
  if seq <= wseq then v = 'duplicate'
  elseif final then v = 'final'
  elseif seq ~= stored + 1 then v = 'stale'
  elseif cutoff > 0 and tonumber(redis.call('HGET', KEYS[1], 'hb') or '0') >= cutoff then v = 'alive' end
  verdicts[#verdicts + 1] = v
  if v == 'ok' then
    local state = ARGV[i + 1]
    redis.call('HSET', KEYS[1], 'seq', seq, 'state', state, 'event', ARGV[i + 2], 'hb', now, wfield, seq)
    if state == 'Pending' and ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[7]) end
    redis.call('HINCRBY', KEYS[1], 'logged', 1)
    redis.call('RPUSH', KEYS[2], ARGV[i + 2])
    redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
    if state == 'Processing' then redis.call('ZADD', KEYS[3], now, ARGV[6])
    else redis.call('ZREM', KEYS[3], ARGV[6]) end
    redis.call('PUBLISH', ARGV[1], ARGV[i + 3])
    redis.call('PUBLISH', KEYS[3] .. ':changed', ARGV[6])
    stored, wseq, wrote, final = seq, seq, true, is_final(state)
  elseif v ~= 'duplicate' then break end
  i = i + 4
end
if wrote then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
local cancel = redis.call('HGET', KEYS[1], 'cancel') == '1'
local out = {stored, cancel and 1 or 0}
for _, v in ipairs(verdicts) do out[#out + 1] = v end
return out
"""

BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
if state == 'Completed' or state == 'Failed' or state == 'Cancelled' then return 1 end
redis.call('HSET', KEYS[1], 'hb', now)
if state == 'Processing' then redis.call('ZADD', KEYS[2], now, ARGV[1]) end
return redis.call('HGET', KEYS[1], 'cancel') == '1' and 1 or 0
"""

CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'Completed' or state == 'Failed' or state == 'Cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '1')
return 1
"""

TAIL = """
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local n = seq - tonumber(ARGV[1])
if n <= 0 then return {} end
return redis.call('LRANGE', KEYS[2], -n, -1)
"""


SINCE = """
local since = tonumber(ARGV[1])
local out = {redis.call('HGET', KEYS[1], 'event') or ''}
local stop = -1
while true do
  local chunk = redis.call('LRANGE', KEYS[2], stop - 63, stop)
  for i = #chunk, 1, -1 do
    if tonumber(cjson.decode(chunk[i])['ts']) < since then return out end
    out[#out + 1] = chunk[i]
  end
  if #chunk < 64 then return out end
  stop = stop - 64
end
"""
CLOCK_SKEW = 2_000.0
"""Ms before an outage's start from which its events are sent again (publishers' clocks may lag the gateway's)."""
RECOVER_BATCH = 200
"""Jobs read in one pipeline after an outage."""


def hub_name(hub: str) -> str:
    """A Gateway's name from ``hub``: a name, or a mount path whose last segment is the name (``/hubs/jobs``)."""
    name = hub.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise ValueError(f"no hub name in {hub!r}")
    return name


@dataclass(frozen=True, slots=True)
class Keys:
    """The Redis names of one hub's jobs (see the module's docstring)."""

    prefix: str
    hub: str

    def record(self, job_id: str) -> str:
        return f"{self.prefix}:progress:{self.hub}:{job_id}"

    def log(self, job_id: str) -> str:
        return f"{self.record(job_id)}:log"

    @property
    def active(self) -> str:
        return f"{self.prefix}:progress:{self.hub}:active"

    @property
    def changed(self) -> str:
        return f"{self.active}:changed"

    @property
    def channel(self) -> str:
        """The backplane's all-nodes channel (``RedisBackplane._all``)."""
        return f"{self.prefix}:all"

    def write_args(self, job_id: str, writer: str, events: list[Event], limits: RecordLimits, ttl: int,
                   cutoff: float) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of ``WRITE`` for ``events``."""
        owner = next((e.get("owner") for e in events if e.get("owner") is not None), None)
        args: list[Any] = [self.channel, writer, limits.max_log, ttl, int(cutoff), job_id, owner or ""]
        for event in events:
            public = {k: v for k, v in event.items() if k != "owner"}
            send = Send(self.hub, Target("group", (job_group(job_id),)), Broadcast("progress", [public]))
            args += [event["seq"], event["state"], json.dumps(public, separators=(",", ":")), encode(send)]
        return [self.record(job_id), self.log(job_id), self.active], args


def reply_of(raw: list[Any]) -> Reply:
    return Reply(tuple(Verdict(_text(v)) for v in raw[2:]), int(raw[0]), bool(int(raw[1])))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisWriter:
    """A sync publisher's side of Redis (redis-py's sync client): ``write`` and ``beat``."""

    def __init__(self, url: str, *, hub: str = "/hubs/jobs", prefix: str = "gw", limits: RecordLimits = DEFAULT_LIMITS,
                 ttl: int = TTL) -> None:
        self.keys, self.limits, self.ttl = Keys(prefix, hub_name(hub)), limits, ttl
        self._redis = syncredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        self._write = self._redis.register_script(WRITE)
        self._beat = self._redis.register_script(BEAT)

    def write(self, job_id: str, writer: str, events: list[Event], cutoff: float = 0.0) -> Reply:
        keys, args = self.keys.write_args(job_id, writer, events, self.limits, self.ttl, cutoff)
        return reply_of(self._write(keys, args))

    def beat(self, job_id: str) -> bool:
        return bool(int(self._beat([self.keys.record(job_id), self.keys.active], [job_id])))

    def close(self) -> None:
        self._redis.close()


class RedisStore:
    """The hub's store in Redis (asyncio), with the reaper and the notices ``Watch`` waits on."""

    def __init__(self, url: str, *, hub: str = "/hubs/jobs", prefix: str = "gw", limits: RecordLimits = DEFAULT_LIMITS,
                 ttl: int = TTL, lease: float = LEASE) -> None:
        self.keys, self.limits, self.ttl = Keys(prefix, hub_name(hub)), limits, ttl
        self.canceller: Canceller | None = None
        self._redis = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5)
        self._write = self._redis.register_script(WRITE)
        self._beat = self._redis.register_script(BEAT)
        self._cancel = self._redis.register_script(CANCEL)
        self._tail = self._redis.register_script(TAIL)
        self._since = self._redis.register_script(SINCE)
        self._changed: dict[str, asyncio.Event] = {}
        self._listener: asyncio.Task[None] | None = None
        self.reaper = Reaper(lease, self._now, self._stale, self.write)

    async def write(self, job_id: str, writer: str, events: list[Event], cutoff: float = 0.0) -> Reply:
        keys, args = self.keys.write_args(job_id, writer, events, self.limits, self.ttl, cutoff)
        return reply_of(await self._write(keys, args))

    async def beat(self, job_id: str) -> bool:
        return bool(int(await self._beat([self.keys.record(job_id), self.keys.active], [job_id])))

    async def load(self, job_id: str) -> JobRecord | None:
        self.reaper.ensure()
        fields = await self._redis.hmget(self.keys.record(job_id), ["event", "owner", "cancel", "hb"])
        return _record(job_id, fields)

    async def snapshot(self, job_id: str) -> Event | None:
        self.reaper.ensure()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(self.keys.record(job_id), ["event", "logged"])
            pipe.lrange(self.keys.log(job_id), 0, -1)
            (event, logged), entries = await pipe.execute()
        if event is None:
            return None
        return snapshot(json.loads(event), [json.loads(e) for e in entries], int(logged or 0))

    async def tail(self, job_id: str, after: int) -> list[Event]:
        entries = await self._tail([self.keys.record(job_id), self.keys.log(job_id)], [after])
        return [json.loads(e) for e in entries]

    async def recover(self, outage: Outage) -> list[Send]:
        """The ``progress`` calls this process's subscribers missed in a backplane outage (for
        ``RedisBackplane.on_recovered``): per job with subscribers here, its logged events since the outage
        began (less ``CLOCK_SKEW``) in seq order, then its final event if it ended before that."""
        prefix = job_group("")
        jobs = sorted(g[len(prefix):] for g in outage.groups.get(self.keys.hub, ()) if g.startswith(prefix))
        sends: list[Send] = []
        for start in range(0, len(jobs), RECOVER_BATCH):
            batch = jobs[start:start + RECOVER_BATCH]
            for job_id, events in zip(batch, await self._missed(batch, outage.began - CLOCK_SKEW), strict=True):
                target = Target("group", (job_group(job_id),))
                sends += [Send(self.keys.hub, target, Broadcast("progress", [event])) for event in events]
        log.info("progress: %d events of %d jobs sent again after a backplane outage", len(sends), len(jobs))
        return sends

    async def _missed(self, jobs: list[str], since: float) -> list[list[Event]]:
        """For each job, its logged events with a ``ts`` at or after ``since``, and its final event."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in jobs:
                await self._since([self.keys.record(job_id), self.keys.log(job_id)], [since], client=pipe)
            replies = await pipe.execute()
        missed = []
        for current, *entries in replies:
            events = [json.loads(e) for e in reversed(entries)]
            final = json.loads(current) if current else None
            if final is not None and final["state"] in FINAL and (not events or events[-1]["seq"] < final["seq"]):
                events.append(final)
            missed.append(events)
        return missed

    def notice(self, job_id: str) -> asyncio.Event:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.ensure_future(self._listen())
        return self._changed.setdefault(job_id, asyncio.Event())

    def attached(self) -> bool:
        return True  # the write script publishes on the backplane itself

    def attach(self, clients: HubClients) -> None:
        return None

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.changed)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        changed = self._changed.pop(_text(message["data"]), None)
                        if changed is not None:
                            changed.set()
            except STORE_ERRORS as exc:
                log.warning("progress: the notices for Watch are unavailable (%r); polling meanwhile", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def cancel(self, job_id: str) -> bool:
        if not int(await self._cancel([self.keys.record(job_id)], [])):
            return False
        await call_canceller(self.canceller, job_id)
        return True

    async def _now(self) -> float:
        seconds, micros = await self._redis.time()
        return float(seconds) * 1000 + int(micros) // 1000

    async def _stale(self, cutoff: float) -> list[JobRecord]:
        ids = await self._redis.zrangebyscore(self.keys.active, "-inf", f"({cutoff}", start=0, num=100)
        records = [await self.load(job_id) for job_id in ids]
        return [r for r in records if r is not None]

    async def start(self) -> None:
        self.reaper.ensure()

    async def close(self) -> None:
        await self.reaper.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self._redis.aclose()


def _record(job_id: str, fields: list[Any]) -> JobRecord | None:
    event, owner, cancel, hb = fields
    if event is None:
        return None
    return record_of(job_id, json.loads(event), owner=owner, cancel=cancel == "1",
                     heartbeat=float(hb) if hb is not None else None)

