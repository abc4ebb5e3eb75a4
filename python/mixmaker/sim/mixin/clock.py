"""The simulator's clock: wall time in nanoseconds plus an offset tests can advance."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class SimClock:
    def __init__(self) -> None:
        self._offset_ns = 0
        self._last = 0
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        """Strictly increasing, so two events never share a time unless asked to."""
        with self._lock:
            self._last = max(time.time_ns() + self._offset_ns, self._last + 1)
            return self._last

    def now_s(self) -> int:
        return (time.time_ns() + self._offset_ns) // 1_000_000_000

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset_ns += int(seconds * 1_000_000_000)


def rfc3339nano(ns: int) -> str:
    """Go's RFC3339Nano: trailing zeros of the fraction dropped (so strings do not sort by time)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"
