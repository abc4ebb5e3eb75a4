"""One asynchronous action at a time, started from a synchronous clock tick.

The clock calls `tick()` synchronously; executors talk to venues with `await`. A tick starts
the action at once (eagerly: it runs in the tick until it first has to wait, and only then
becomes a task) and returns; a tick that finds the previous action still running skips (the
next tick's view is fresher than a queued one). Against an in-process venue nothing waits, so
an action costs no trip through the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import CoroutineType

from mixmaker import eager

log = logging.getLogger("mixmaker.strategy")


class SingleFlight:
    def __init__(self, name: str) -> None:
        self.name = name
        self.skipped = 0
        self.errors = 0
        self.last_error: str | None = None
        self._task: asyncio.Future[object] | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, make: Callable[[], Awaitable[object]]) -> bool:
        """Start `make()` unless an action is still running; a running event loop is needed
        only if the action has to wait."""
        if self.busy:
            self.skipped += 1
            return False
        aw = make()
        if type(aw) is not CoroutineType and not asyncio.iscoroutine(aw):
            aw = _await(aw)
        s = eager.start(aw)
        if s.done:
            self._task = None
            if s.error is not None:
                self._failed(s.error)
        else:
            self._task = s.task
            s.task.add_done_callback(self._done)  # type: ignore[union-attr]
        return True

    async def idle(self) -> None:
        """Wait for the running action, if any (its errors are counted, not raised)."""
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    def _done(self, task: asyncio.Future[object]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._failed(task.exception())

    def _failed(self, e: BaseException | None) -> None:
        self.errors += 1
        self.last_error = repr(e)
        log.error("%s: action failed: %r", self.name, e)


async def _await(aw: Awaitable[object]) -> object:
    return await aw


__all__ = ["SingleFlight"]
