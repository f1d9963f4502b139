"""What a hub call may be beyond one result: streams both ways and client results, per connection.

- A server stream is a hub method that is an async generator (or is annotated to return an async iterator).
  A ``StreamInvocation`` starts it as a task that pushes each item as a ``StreamItem`` and ends with a
  ``Completion``; a ``CancelInvocation`` or the connection closing cancels the task, and the generator is
  closed, so its ``finally`` runs at once. While the connection's output (unsent plus unacknowledged)
  exceeds ``stream_buffer`` bytes, the stream waits before taking its next item.
- A client stream is an ``UploadStream``: an async iterator fed by the client's ``StreamItem``s and ended by
  its ``Completion`` (with an error, the iterator raises ``ClientStreamError``). At most ``upload_buffer``
  items wait for the hub method; beyond that, the connection's reading waits (TCP pushes back).
- A client result is an ``Invocation`` with an id that the server sends to one connection, awaiting the
  client's ``Completion`` (``ClientResults``).

As ASP.NET Core's dispatcher does, a ``StreamItem`` or ``Completion`` for an id this side does not know is
logged and ignored: the connection stays open.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import inspect
import itertools
import logging
import typing
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .protocol import State
from .protocol.messages import Completion, Invocation, StreamItem
from .server.connection import ServerConnection

log = logging.getLogger("gateway")

STREAM_TYPES = (collections.abc.AsyncIterator, collections.abc.AsyncIterable, collections.abc.AsyncGenerator)
YIELD_EVERY = 64
"""A server stream lets the event loop run after this many items that did not wait (a generator that never
awaits would otherwise hold the loop)."""


class HubError(Exception):
    """Raise from a hub method: its message reaches the client as the invocation's error."""


class ClientResultError(HubError):
    """A client result did not come: the client answered with an error, went away, or is not here."""


class ClientResultTimeout(ClientResultError, TimeoutError):
    """The client did not answer a client result within its timeout."""


class ClientStreamError(HubError):
    """The client ended its stream with an error (or its connection closed mid-stream)."""


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """The hub's per-connection limits on streams and client results (from ``Settings``)."""

    max_streams: int = 16
    max_client_results: int = 16
    client_result_timeout: float = 30.0
    stream_buffer: int = 256 * 1024
    upload_buffer: int = 256


# --- the shapes of hub methods ---------------------------------------------------------------------


def _is_stream_type(hint: Any) -> bool:
    if isinstance(hint, str):
        return hint.split("[", 1)[0].rsplit(".", 1)[-1] in ("AsyncIterator", "AsyncIterable", "AsyncGenerator")
    return typing.get_origin(hint) in STREAM_TYPES or hint in STREAM_TYPES


def _hints(method: Callable[..., Any]) -> dict[str, Any]:
    """The method's annotations, resolved when they can be (strings otherwise)."""
    try:
        return typing.get_type_hints(method)
    except Exception:  # an annotation naming what the module cannot resolve: fall back to its text
        return dict(getattr(method, "__annotations__", {}))


def is_stream_method(method: Callable[..., Any]) -> bool:
    """Whether a hub method streams its results: an async generator, or annotated to return an async iterator."""
    return inspect.isasyncgenfunction(method) or _is_stream_type(_hints(method).get("return"))


def stream_parameters(method: Callable[..., Any]) -> tuple[int, ...]:
    """The positions (after ``self``) of the parameters annotated as async iterators: the client's streams."""
    hints = _hints(method)
    names = list(inspect.signature(method).parameters)[1:]
    return tuple(i for i, name in enumerate(names) if _is_stream_type(hints.get(name)))


def bind_streams(arguments: list[Any], streams: list[UploadStream], positions: tuple[int, ...]) -> list[Any]:
    """The call's arguments with the client's streams in their parameters' places (appended if none is
    annotated). Raises HubError when the counts differ, with ASP.NET Core's wording."""
    if not positions:
        return [*arguments, *streams]
    if len(streams) != len(positions):
        raise HubError(f"Client sent {len(streams)} stream(s), Hub method expects {len(positions)}.")
    bound = list(arguments)
    for position, stream in zip(positions, streams, strict=True):
        bound.insert(position, stream)
    return bound


# --- client to server ---------------------------------------------------------------------------


class UploadStream(AsyncIterator[Any]):
    """The client's stream, as the hub method's async iterator; bounded to ``limit`` waiting items."""

    __slots__ = ("id", "_items", "_limit", "_ended", "_error", "_abandoned", "_more", "_room")

    def __init__(self, stream_id: str, limit: int) -> None:
        self.id = stream_id
        self._items: deque[Any] = deque()
        self._limit = limit
        self._ended = False
        self._error: str | None = None
        self._abandoned = False
        self._more = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    async def put(self, item: Any) -> None:
        """An item from the client; waits while ``limit`` items wait for the hub method."""
        while len(self._items) >= self._limit and not self._abandoned:
            self._room.clear()
            await self._room.wait()
        if not self._abandoned:
            self._items.append(item)
            self._more.set()

    def end(self, error: str | None = None) -> None:
        """The client completed the stream (``error``: it failed); items already sent are read first."""
        self._ended = True
        self._error = error
        self._more.set()

    def abandon(self) -> None:
        """The hub method is over: drop what comes, and free a ``put`` that waits."""
        self._abandoned = True
        self._items.clear()
        self._room.set()

    async def __anext__(self) -> Any:
        while not self._items:
            if self._ended:
                if self._error is not None:
                    raise ClientStreamError(self._error)
                raise StopAsyncIteration
            self._more.clear()
            await self._more.wait()
        self._room.set()
        return self._items.popleft()


# --- server to client ---------------------------------------------------------------------------

MOVED = "The stream ended: its connection moved to another server."


async def _items(conn: ServerConnection, invocation_id: str, iterator: AsyncIterator[Any], limit: int) -> bool:
    """Push each item of ``iterator`` as a StreamItem, waiting for room; raises what the iterator raises.
    False if the connection closed (or moved away) first."""
    unyielded = 0
    async for item in iterator:
        if conn.core.buffered > limit:
            await conn.drained(limit)
            unyielded = 0
        if conn.core.state is State.CLOSED:
            return False
        conn.push_message(StreamItem(invocation_id, item))
        unyielded += 1
        if unyielded >= YIELD_EVERY:
            await asyncio.sleep(0)
            unyielded = 0
    return True


async def run_stream(
    conn: ServerConnection, invocation_id: str, iterator: AsyncIterator[Any], limit: int,
    failure: Callable[[Exception], str],
) -> None:
    """A server stream from start to Completion; ``failure`` words the error of an exception. A stream whose
    connection moved to another process ends here, with an error the new holder passes on."""
    error: str | None = None
    finished = False
    try:
        finished = await _items(conn, invocation_id, iterator, limit)
    except asyncio.CancelledError:
        log.info("connection %s: stream %s cancelled", conn.id, invocation_id)
    except Exception as exc:
        error, finished = failure(exc), True
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    if conn.moved is not None:
        conn.push_message(Completion(invocation_id, error=error if finished else MOVED))
    elif conn.core.state is not State.CLOSED:
        conn.push_message(Completion(invocation_id, error=error))


# --- per connection ------------------------------------------------------------------------------


class ConnectionStreams:
    """One connection's server streams (tasks), client streams and pending client results, by id."""

    __slots__ = ("conn", "limits", "streams", "uploads", "results", "_ids")

    def __init__(self, conn: ServerConnection, limits: StreamLimits) -> None:
        self.conn = conn
        self.limits = limits
        self.streams: dict[str, asyncio.Task[None]] = {}
        self.uploads: dict[str, UploadStream] = {}
        self.results: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)

    @property
    def open_streams(self) -> int:
        return len(self.streams) + len(self.uploads)

    def room_for(self, count: int) -> bool:
        return self.open_streams + count <= self.limits.max_streams

    def start(self, invocation_id: str, stream: collections.abc.Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(stream)
        self.streams[invocation_id] = task
        task.add_done_callback(lambda _: self.streams.pop(invocation_id, None))

    def cancel(self, invocation_id: str) -> None:
        task = self.streams.get(invocation_id)
        if task is None:
            log.info("connection %s: CancelInvocation for %r, which is not running (ignored)", self.conn.id,
                     invocation_id)
            return
        task.cancel()

    def open_uploads(self, stream_ids: list[str]) -> list[UploadStream]:
        """The client's streams of an invocation; HubError for an id already in use."""
        if any(stream_id in self.uploads for stream_id in stream_ids) or len(set(stream_ids)) < len(stream_ids):
            raise HubError("A stream id is already in use on this connection.")
        uploads = [UploadStream(stream_id, self.limits.upload_buffer) for stream_id in stream_ids]
        self.uploads.update((upload.id, upload) for upload in uploads)
        return uploads

    def close_uploads(self, uploads: list[UploadStream]) -> None:
        for upload in uploads:
            upload.abandon()
            self.uploads.pop(upload.id, None)

    async def item(self, message: StreamItem) -> None:
        upload = self.uploads.get(message.invocation_id)
        if upload is None:
            log.info("connection %s: StreamItem for unknown stream %r (ignored)", self.conn.id, message.invocation_id)
            return
        await upload.put(message.item)

    def completed(self, message: Completion) -> None:
        """The client's Completion: of one of its streams, or answering a client result."""
        upload = self.uploads.pop(message.invocation_id, None)
        if upload is not None:
            upload.end(message.error)
            return
        future = self.results.pop(message.invocation_id, None)
        if future is None:
            log.info("connection %s: Completion for %r, which was never asked or is over (ignored)", self.conn.id,
                     message.invocation_id)
        elif not future.done():
            if message.error is not None:
                future.set_exception(ClientResultError(message.error))
            else:
                future.set_result(message.result)

    async def ask(self, method: str, arguments: list[Any], timeout: float | None) -> Any:
        """Invoke ``method`` on this client and return its answer; raises ClientResultError."""
        conn = self.conn
        if len(self.results) >= self.limits.max_client_results:
            raise ClientResultError(f"Too many client results pending on connection {conn.id} "
                                    f"(limit {self.limits.max_client_results}).")
        invocation_id = f"s{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.results[invocation_id] = future
        wait = self.limits.client_result_timeout if timeout is None else timeout
        try:
            conn.push_message(Invocation(method, arguments, invocation_id))
            return await asyncio.wait_for(future, wait)
        except TimeoutError:
            raise ClientResultTimeout(f"The client did not answer '{method}' within {wait} s.") from None
        finally:
            self.results.pop(invocation_id, None)

    def end(self, why: str) -> None:
        """The connection closed or moved away: streams are cancelled, client streams fail, client results fail."""
        for task in list(self.streams.values()):
            task.cancel()
        for upload in self.uploads.values():
            upload.end(why)
        self.uploads.clear()
        for future in self.results.values():
            if not future.done():
                future.set_exception(ClientResultError(why))
        self.results.clear()
