"""Running a coroutine by hand until it first suspends, in the caller: a write or a read that an ASGI server
completes at once (the socket took the bytes, the body had arrived) then costs no task, no timer, no wake-up."""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Resumed(Generic[T]):
    """The rest of a coroutine that suspended on ``step`` when run by hand: awaiting it resumes the coroutine
    (what ``await`` would have done had a task run it from the start), cancellation included."""

    __slots__ = ("coro", "step")

    def __init__(self, coro: Coroutine[Any, Any, T], step: Any) -> None:
        self.coro, self.step = coro, step

    def __await__(self) -> Generator[Any, Any, T]:
        coro, step = self.coro, self.step
        while True:
            try:
                sent = yield step
            except BaseException as exc:  # noqa: BLE001 - a cancellation goes to the suspended coroutine
                try:
                    step = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
            else:
                try:
                    step = coro.send(sent)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]


def start(coro: Coroutine[Any, Any, T]) -> tuple[T, None] | tuple[None, Resumed[T]]:
    """Run ``coro`` until it suspends: ``(result, None)`` when it finished, ``(None, rest)`` when it suspended
    (await ``rest``). Its exception, if it raised before suspending, propagates."""
    try:
        step = coro.send(None)
    except StopIteration as stop:
        return stop.value, None
    return None, Resumed(coro, step)
