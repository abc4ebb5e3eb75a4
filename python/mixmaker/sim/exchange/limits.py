"""Binance's request-weight limit: a sliding one-minute window, 429 with Retry-After, then 418.

A client that asks again while a 429's Retry-After has not run out is banned (418) for
`ban_ms`, doubled for each further ban, as Binance escalates for repeat offenders.
"""

from __future__ import annotations

from collections import deque

from mixmaker.sim.exchange.errors import IpBanned, TooMuchWeight

WINDOW_MS = 60_000


class WeightLimiter:
    def __init__(self, limit: int = 6000, ban_ms: int = 120_000) -> None:
        self.limit = limit
        self.ban_ms = ban_ms
        self._window: deque[tuple[int, int]] = deque()  # (ms, weight)
        self._used = 0
        self._retry_until = 0  # a 429 was answered; asking before this is ignoring it
        self._banned_until = 0
        self.bans = 0

    def used(self, now_ms: int) -> int:
        while self._window and self._window[0][0] <= now_ms - WINDOW_MS:
            self._used -= self._window.popleft()[1]
        return self._used

    def charge(self, weight: int, now_ms: int, force_limit: bool = False) -> int:
        """Count a request; the used weight for `X-MBX-USED-WEIGHT-1M`, or a 429/418 error."""
        if now_ms < self._banned_until:
            raise self._ban_error(now_ms)
        if now_ms < self._retry_until:
            self.bans += 1
            self._banned_until = now_ms + self.ban_ms * 2 ** (self.bans - 1)
            raise self._ban_error(now_ms)
        used = self.used(now_ms)
        if force_limit or used + weight > self.limit:
            free_at = self._window[0][0] + WINDOW_MS if self._window and not force_limit else now_ms + 1000
            retry_after = max(1, -(-(free_at - now_ms) // 1000))
            self._retry_until = now_ms + retry_after * 1000
            raise TooMuchWeight(retry_after)
        self._window.append((now_ms, weight))
        self._used += weight
        return self._used

    def _ban_error(self, now_ms: int) -> IpBanned:
        retry_after = max(1, -(-(self._banned_until - now_ms) // 1000))
        return IpBanned(
            retry_after,
            f"Way too much request weight used; IP banned until {self._banned_until}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
        )
