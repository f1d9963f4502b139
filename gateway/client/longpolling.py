"""LongPolling: GETs held by the server until it has data, POSTs the other way."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from .http import HttpClient, HttpConnection, HttpError, Origin
from .transport import CLOSE, OnClose, OnReceive, PostSender, TransportError, end_task, transport_target


class LongPollingTransport:
    name: ClassVar[str] = "LongPolling"
    binary: ClassVar[bool] = True

    __slots__ = (
        "_origin", "_http", "_on_receive", "_on_close", "_sender", "_poll", "_task", "_stopping", "_generation",
    )

    def __init__(self, origin: Origin, http: HttpClient, on_receive: OnReceive, on_close: OnClose) -> None:
        self._origin = origin
        self._http = http
        self._on_receive = on_receive
        self._on_close = on_close
        self._sender: PostSender | None = None
        self._poll: HttpConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._generation = 0

    async def connect(self, token: str, *, resume: bool = False) -> None:
        target = transport_target(self._origin, token)
        if self._sender is not None:
            self._sender.retire()
        self._sender = PostSender(self._http, target)
        poll = await HttpConnection.open(self._origin)
        try:
            if not resume:  # the first poll answers at once; it proves the token before the handshake
                response = await poll.request("GET", target)
                if response.status != 200:
                    raise HttpError(response.status, response.body, "LongPolling GET")
                poll.recycle()
        except BaseException:
            poll.abort()
            raise
        self._poll = poll
        self._generation += 1
        first = transport_target(self._origin, token, resume="1") if resume else target
        self._task = asyncio.ensure_future(self._loop(self._generation, poll, first, target))

    async def _loop(self, generation: int, poll: HttpConnection, first: str, target: str) -> None:
        error: Exception | None = None
        try:
            await self._polls(generation, poll, first, target)
        except Exception as exc:
            error = None if self._stopping else exc
        finally:
            if self._generation == generation:
                if self._poll is not None:
                    self._poll.abort()
                self._poll = None
                self._on_close(error)

    async def _polls(self, generation: int, poll: HttpConnection, first: str, target: str) -> None:
        request = first
        while True:
            response = await poll.request("GET", request, [("Accept", "text/plain")])
            request = target
            if self._generation != generation:
                poll.abort()
                return  # a newer stream replaced this one
            if response.status == 204:
                return  # the connection closed, or a newer poll superseded this one
            if response.status != 200:
                raise HttpError(response.status, response.body, "LongPolling GET")
            binary = (response.header("content-type") or "").startswith("application/octet-stream")
            self._on_receive(response.body if binary else response.body.decode("utf-8"))
            await asyncio.sleep(0)  # let a close that this text caused (a Close message) take effect
            if self._stopping or self._generation != generation or self._poll is not poll:
                return  # no poll on a token the server has just closed: it would count as a bad token
            if not poll.recycle():  # the server would not keep the connection alive: take a new one
                poll.abort()
                poll = self._poll = await HttpConnection.open(self._origin)

    async def send(self, text: str | bytes) -> None:
        if self._sender is None:
            raise TransportError("the transport is not connected")
        await self._sender.send(text)

    async def stop(self, close: str | bytes = CLOSE) -> None:
        self._stopping = True
        if self._poll is not None:
            self._poll.abort()
        if self._sender is not None:
            await self._sender.delete()
        await end_task(self._task)
        await self._http.aclose()

    async def abort(self) -> None:
        poll, self._poll = self._poll, None
        if poll is not None:
            poll.abort()
