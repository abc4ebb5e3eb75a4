"""Jittered exponential backoff: reconnects, refused snapshots, 429s without a Retry-After."""

from __future__ import annotations

import random


class Backoff:
    """`base_s * 2**(n-1)` capped at `max_s`, each delay drawn in [50 %, 100 %] of its step so
    that clients that failed together do not come back together."""

    def __init__(self, base_s: float, max_s: float, seed: int | None = None) -> None:
        if base_s <= 0 or max_s < base_s:
            raise ValueError(f"backoff needs 0 < base <= max, got {base_s} / {max_s}")
        self.base_s, self.max_s = base_s, max_s
        self._rng = random.Random(seed)

    def delay(self, failures: int) -> float:
        step = min(self.max_s, self.base_s * 2.0 ** max(0, failures - 1))
        return step * (0.5 + self._rng.random() / 2)
