"""LongPolling: each GET is held until data arrives or the poll timeout passes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from ..protocol import State
from ..protocol.transports import LONG_POLLING
from ..server.asgi import STREAM_HEADERS, Receive, Request, Send, respond, respond_error, wait_disconnect
from ..server.connection import ServerConnection
from .base import Stalled, TransportBase, claim, release, within_send_timeout


class LongPollingTransport(TransportBase):
    name: ClassVar[str] = LONG_POLLING
    persistent: ClassVar[bool] = False

    async def serve(self, conn: ServerConnection, request: Request, receive: Receive, send: Send) -> None:
        core = conn.core
        # the first poll answers at once: clients wait for it before the handshake
        if core.generation == 0 and core.state is not State.CLOSED:
            conn.transport = self.name
            release(conn, core.attach(conn.now(), pings=False), self)
            await respond(send, 200, b"", headers=STREAM_HEADERS)
            return
        generation = claim(conn, self, resume=request.query.get("resume") == "1")
        if generation is None:
            await respond_error(send, 409, "another stream is already open for this connection")
            return
        if core.has_output and core.generation == generation:  # output waits: answered now, nothing is held
            status, body = 200, _bytes(core.take(conn.now()))
            release(conn, generation, self)
        else:
            gone = asyncio.ensure_future(wait_disconnect(receive))
            try:
                status, body = await self._hold(conn, generation, gone)
            finally:
                _drop(gone)
                release(conn, generation, self)
        if status:
            binary = core.protocol.transfer_format == "Binary"
            kind = "application/octet-stream" if binary else "text/plain; charset=utf-8"
            with contextlib.suppress(Stalled):
                await within_send_timeout(conn, respond(send, status, body, kind, STREAM_HEADERS))

    async def _hold(self, conn: ServerConnection, generation: int, gone: asyncio.Future[None]) -> tuple[int, bytes]:
        """(status, body) to answer with; status 0 when the client has gone (nothing is taken then)."""
        core = conn.core
        wake = conn.wake
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.poll_timeout

        def woken(_: object) -> None:
            wake.set()

        # ``gone`` and one timer set the wake event: no task and no asyncio.wait per wait (see pump)
        gone.add_done_callback(woken)
        timer = loop.call_at(deadline, wake.set)
        try:
            while True:
                if core.generation != generation:  # replaced (204 ends it), or let go to resume elsewhere
                    return (200 if conn.leaving else 204), b""
                if core.has_output:
                    return 200, _bytes(core.take(conn.now()))
                if core.state is State.CLOSED:
                    return 204, b""
                if gone.done():
                    return 0, b""
                if loop.time() >= deadline:
                    return 200, b""
                wake.clear()
                await wake.wait()
        finally:
            timer.cancel()
            gone.remove_done_callback(woken)


def _drop(watch: asyncio.Future[None]) -> None:
    """Stop watching for the client's departure without waiting for it: the answer goes out first, and the
    watcher ends within a turn of the loop (an error it met is read, not left to the garbage collector)."""
    watch.cancel()
    watch.add_done_callback(_read)


def _read(watch: asyncio.Future[None]) -> None:
    if not watch.cancelled():
        watch.exception()


def _bytes(payload: str | bytes) -> bytes:
    """A poll's body: the taken payload (text on a Text protocol) as bytes."""
    return payload.encode() if isinstance(payload, str) else payload
