"""A periodic worker: runs one pass of a job every interval until asked to stop, and stops only
between two passes (a graceful stop finishes the step in flight; the job's own steps are durable
and idempotent, so a hard kill in the middle of one is resumed by the next start)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("mixmaker.engine")


@dataclass
class WorkerStats:
    runs: int = 0
    errors: int = 0
    last_ok_ns: int = 0
    last_error: str = ""
    last_duration_s: float = 0.0
    consecutive_errors: int = 0
    started_ns: int = field(default_factory=time.time_ns)


class Periodic:
    def __init__(self, name: str, interval_s: float, job: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.job = job
        self.stats = WorkerStats()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Periodic:
        self.task = asyncio.create_task(self._run(), name=f"worker {self.name}")
        return self

    def wake(self) -> None:
        """Run the next pass now (e.g. a payment just arrived)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            t0 = time.perf_counter()
            try:
                await self.job()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - one failed pass is retried at the next; it is counted and shown
                self.stats.errors += 1
                self.stats.consecutive_errors += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                log.warning("%s: pass failed: %s", self.name, self.stats.last_error,
                            exc_info=self.stats.consecutive_errors == 1)
            else:
                self.stats.runs += 1
                self.stats.consecutive_errors = 0
                self.stats.last_ok_ns = time.time_ns()
            self.stats.last_duration_s = time.perf_counter() - t0
            self._wake.clear()
            waits = [asyncio.ensure_future(self._stopping.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waits, timeout=self.interval_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def stop(self, timeout_s: float) -> bool:
        """Lets the pass in flight finish (up to `timeout_s`), then ends; True if it ended cleanly."""
        self._stopping.set()
        if self.task is None:
            return True
        done, _ = await asyncio.wait({self.task}, timeout=timeout_s)
        if not done:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            return False
        return True
