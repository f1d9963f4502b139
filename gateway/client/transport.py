"""The client transports' small interface, and what they share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol

from ..protocol.hubjson import encode
from ..protocol.messages import Close
from .http import HttpClient, HttpConnection, HttpError, Origin
from .posting import PostBatcher

CLOSE = encode(Close())

OnReceive = Callable[[str | bytes], None]
"""Called with what a stream carries as it arrives (records in any split; empty for an empty poll): text, or
bytes for a Binary hub protocol."""
OnClose = Callable[[Exception | None], None]
"""Called once per stream when it ends: None when the server ended it, else what broke it."""


class TransportError(Exception):
    """A stream could not be opened or broke."""


class Transport(Protocol):
    """One way of carrying a connection: ``connect`` opens a stream (again, to resume), ``send`` writes.

    One reader task runs per open stream and reports through ``on_receive`` and ``on_close``.
    """

    name: ClassVar[str]
    binary: ClassVar[bool]
    """Whether it carries the Binary transfer format (MessagePack)."""

    def __init__(self, origin: Origin, http: HttpClient, on_receive: OnReceive, on_close: OnClose) -> None: ...

    async def connect(self, token: str, *, resume: bool = False) -> None:
        """Open a stream on ``token``; with ``resume`` it replaces a stream that dropped."""
        ...

    async def send(self, text: str | bytes) -> None:
        """Send records to the server."""
        ...

    async def stop(self, close: str | bytes = CLOSE) -> None:
        """Close the connection politely (``close``, the Close message, and a close frame; or a DELETE)."""
        ...

    async def abort(self) -> None:
        """Cut the current stream as a network failure would (no close frame, no DELETE)."""
        ...


class PostSender:
    """The client-to-server half of SSE, ForeverFrame and LongPolling: batched POSTs, and the DELETE."""

    __slots__ = ("_http", "_target", "_batcher", "_detached", "_binary")

    def __init__(self, http: HttpClient, target: str) -> None:
        self._http = http
        self._target = target
        self._batcher = PostBatcher(self._post)
        self._detached = False  # an answer said the server holds no stream of ours
        self._binary = False  # bytes were sent: the bodies are application/octet-stream from then on

    def retire(self) -> None:
        """A resume replaced this sender: what still waits here is dropped, since the replay
        after the resume's Sequence carries every unacknowledged message again."""
        self._batcher.retire()

    async def send(self, text: str | bytes) -> bool:
        """POST ``text`` (batched with whatever waits); True when an answer said no stream is attached at the server."""
        if isinstance(text, bytes):
            self._binary = True
        await self._batcher.send_and_wait(text)
        detached, self._detached = self._detached, False
        return detached

    async def _post(self, body: bytes) -> None:
        kind = "application/octet-stream" if self._binary else "text/plain; charset=utf-8"
        response = await self._http.request("POST", self._target, [("Content-Type", kind)], body)
        if response.status != 200:
            raise HttpError(response.status, response.body, "POST")
        if response.header("x-gateway-stream") == "none":
            self._detached = True

    async def delete(self) -> None:
        with contextlib.suppress(OSError, HttpError):
            response = await self._http.request("DELETE", self._target)
            if response.status not in (202, 404):
                raise HttpError(response.status, response.body, "DELETE")


def transport_target(origin: Origin, token: str, /, **params: str) -> str:
    return origin.target(id=token, **params)


async def end_task(task: asyncio.Task[None] | None, timeout: float = 2.0) -> None:
    """Wait for a reader task to finish, cancelling it after ``timeout``."""
    if task is None or task is asyncio.current_task():
        return
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(asyncio.shield(task), timeout)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class HttpStreamTransport:
    """A held GET for server-to-client and POSTs the other way (ServerSentEvents, ForeverFrame).

    Subclasses say how to ask for the stream (``_params``, ``_headers``) and how to read it (``_parser``).
    """

    name: ClassVar[str]
    binary: ClassVar[bool] = False

    __slots__ = ("_origin", "_http", "_on_receive", "_on_close", "_sender", "_stream", "_task")

    def __init__(self, origin: Origin, http: HttpClient, on_receive: OnReceive, on_close: OnClose) -> None:
        self._origin = origin
        self._http = http
        self._on_receive = on_receive
        self._on_close = on_close
        self._sender: PostSender | None = None
        self._stream: HttpConnection | None = None
        self._task: asyncio.Task[None] | None = None

    def _params(self) -> dict[str, str]:
        return {}

    def _headers(self) -> list[tuple[str, str]]:
        return []

    def _parser(self) -> Callable[[bytes], Sequence[str | None]]:
        raise NotImplementedError

    async def connect(self, token: str, *, resume: bool = False) -> None:
        if self._sender is not None:
            self._sender.retire()
        self._sender = PostSender(self._http, transport_target(self._origin, token))
        target = transport_target(self._origin, token, **self._params())
        stream, head = await self._http.stream("GET", target, self._headers())
        if head.status != 200:
            body = await stream.read()
            await stream.aclose()
            raise HttpError(head.status, body, f"{self.name} GET")
        self._stream = stream
        self._task = asyncio.ensure_future(self._read(stream, self._parser()))

    async def _read(self, stream: HttpConnection, feed: Callable[[bytes], Sequence[str | None]]) -> None:
        error: Exception | None = None
        try:
            async for chunk in stream.chunks():
                for payload in feed(chunk):
                    if payload is None or self._stream is not stream:
                        return  # the end of the stream, or a newer stream replaced this one
                    self._on_receive(payload)
        except Exception as exc:
            error = exc
        finally:
            stream.abort()
            if self._stream is stream:
                self._stream = None
                self._on_close(error)

    async def send(self, text: str | bytes) -> None:
        sender = self._sender
        if sender is None:
            raise TransportError("the transport is not connected")
        if await sender.send(text) and sender is self._sender and self._stream is not None:
            self._stream.abort()  # the server saw our stream end (a proxy's silent cut): the reader resumes

    async def stop(self, close: str | bytes = CLOSE) -> None:
        if self._sender is not None:
            await self._sender.delete()
        await end_task(self._task)
        await self._http.aclose()

    async def abort(self) -> None:
        if self._stream is not None:
            self._stream.abort()
