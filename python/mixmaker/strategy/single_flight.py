"""One asynchronous action at a time, started from a synchronous clock tick.

The clock calls `tick()` synchronously; executors talk to venues with `await`. A tick starts
the action as a task and returns; a tick that finds the previous action still running skips
(the next tick's view is fresher than a queued one)."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger("mixmaker.strategy")


class SingleFlight:
    def __init__(self, name: str) -> None:
        self.name = name
        self.skipped = 0
        self.errors = 0
        self.last_error: str | None = None
        self._task: asyncio.Future | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, make: Callable[[], Awaitable[object]]) -> bool:
        """Start `make()` unless an action is still running; needs a running event loop."""
        if self.busy:
            self.skipped += 1
            return False
        self._task = asyncio.ensure_future(make())
        self._task.add_done_callback(self._done)
        return True

    async def idle(self) -> None:
        """Wait for the running action, if any (its errors are counted, not raised)."""
        if self._task is not None:
            await asyncio.wait([self._task])

    def _done(self, task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.errors += 1
            self.last_error = repr(task.exception())
            log.error("%s: action failed: %r", self.name, task.exception())
