"""CPU that other processes used while a benchmark ran (the 2-core box is shared with builds)."""

from __future__ import annotations

import os
import time


class CpuMeter:
    """Busy jiffies of the whole machine from /proc/stat minus this process's own CPU time, in cores."""

    def __init__(self) -> None:
        self.t0, self.busy0, self.own0 = time.monotonic(), self._busy(), self._own()

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system

    def other_cores(self):
        busy, wall = self._busy(), time.monotonic() - self.t0
        if busy is None or self.busy0 is None or wall <= 0:
            return None
        return max(0.0, (busy - self.busy0) - (self._own() - self.own0)) / wall


def warn_if_busy(other_cores: float | None) -> None:
    """On the shared 2-core box a concurrent build skews every figure: say so."""
    if other_cores is not None and other_cores > 0.15:
        print(f"WARNING: other processes used {other_cores:.2f} cores during the run")
