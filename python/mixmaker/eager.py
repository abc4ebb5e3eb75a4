"""Eager coroutines: start one at once, in the caller, and make it a task only if it has to wait.

This is what Python 3.12's eager task factory does, for 3.11. A coroutine that never waits (an
in-process venue, a journal in memory) then costs a function call instead of a task and a trip
through the event loop; one that does wait (a network venue) carries on as an ordinary task from
where it stopped. Either way it runs the same code: live and backtest differ only in whether
anything had to wait.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


class Started(Generic[T]):
    """The outcome of `start`: `done` with `result` (or `error`), or still running as `task`."""

    __slots__ = ("done", "result", "error", "task")

    def __init__(self, done: bool, result: T | None = None, error: BaseException | None = None,
                 task: asyncio.Task[T] | None = None) -> None:
        self.done = done
        self.result = result
        self.error = error
        self.task = task

    def value(self) -> T:
        """The result of a finished coroutine (its exception is raised)."""
        if self.error is not None:
            raise self.error
        # Finished without an error: `result` is what the coroutine returned (None included).
        # (Not `cast`: this runs for every eager call, and `cast` is a Python-level call.)
        return self.result  # type: ignore[return-value]

    async def wait(self) -> T:
        """The result, waiting for the task if the coroutine had to wait."""
        if self.task is None:
            return self.value()
        return await self.task

    def future(self) -> asyncio.Future[T]:
        """An awaitable future of the outcome (a finished one when nothing waited)."""
        if self.task is not None:
            return self.task
        f: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            f.set_exception(self.error)
        else:
            f.set_result(cast(T, self.result))
        return f


def start(coro: Coroutine[Any, Any, T]) -> Started[T]:
    """Run `coro` until it finishes or first waits. Needs a running event loop only if it waits.

    Like a task (and 3.12's eager tasks), it runs in a copy of the caller's context: a context
    variable it sets stays its own, and the task that carries it on runs in that same copy (so a
    `ContextVar.reset` after a wait finds the token it set)."""
    ctx = contextvars.copy_context()
    try:
        waiting_on = ctx.run(coro.send, None)
    except StopIteration as e:
        return Started(True, e.value)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - handed to the caller, as a task would keep it
        return Started(True, error=e)
    task = asyncio.get_running_loop().create_task(_carry_on(coro, waiting_on), context=ctx)
    return Started(False, task=task)


async def _carry_on(coro: Coroutine[Any, Any, T], waiting_on: Any) -> T:
    """Drive a started coroutine the way a Task would: wait for what it yielded, then resume it."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            elif asyncio.isfuture(waiting_on):
                waiting_on._asyncio_future_blocking = False
                await asyncio.wait([waiting_on])
            else:
                waiting_on = coro.throw(RuntimeError(f"coroutine yielded {waiting_on!r}, not a future"))
                continue
        except asyncio.CancelledError:
            if asyncio.isfuture(waiting_on):
                waiting_on.cancel()
            try:
                waiting_on = coro.throw(asyncio.CancelledError())
            except StopIteration as e:
                return cast(T, e.value)
            continue
        try:
            waiting_on = coro.send(None)
        except StopIteration as e:
            return cast(T, e.value)


async def gather(*coros: Coroutine[Any, Any, Any]) -> list[Any]:
    """`asyncio.gather` for coroutines, each started eagerly in turn: every one runs until it
    finishes or waits before the next starts; the first error is raised once all have started."""
    started = [start(c) for c in coros]
    if all(s.done for s in started):
        results = []
        for s in started:
            results.append(s.value())
        return results
    return list(await asyncio.gather(*(s.future() for s in started)))


__all__ = ["Started", "gather", "start"]
