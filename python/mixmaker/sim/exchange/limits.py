"""Binance's rate limits: request weight per IP (1 minute) and new orders per account (10 s).

Binance counts both in fixed intervals of its own clock, not in sliding windows: "a 1 MINUTE
interval starts every minute. A request submitted at 00:01:23.456 counts towards the 00:01:00
minute's limit. Once the 00:02:00 minute starts, the count will reset to zero again" (spot API
docs, rate limits). So does this simulator: a request counts in the interval it arrived in, by
the venue's clock, and `X-MBX-USED-WEIGHT-1M` is the count of the current interval.

Over the weight limit the answer is 429 with Retry-After (the seconds until the interval ends);
a client that asks again before the Retry-After has run out is banned (418) for `ban_ms`, doubled
for each further ban, as Binance escalates for repeat offenders. Over the order limit the answer
is 429 with -1015 (no ban).

The intervals' lengths are parameters so that a test can compress time (a "minute" of one
second); headers and messages keep Binance's names.
"""

from __future__ import annotations

from mixmaker.sim.exchange.errors import IpBanned, TooManyOrders, TooMuchWeight

WEIGHT_WINDOW_MS = 60_000
ORDER_WINDOW_MS = 10_000


class FixedWindow:
    """A count per interval `[k * span_ms, (k + 1) * span_ms)` of the venue's clock."""

    def __init__(self, span_ms: int) -> None:
        if span_ms <= 0:
            raise ValueError(f"a rate limit interval must be positive, got {span_ms} ms")
        self.span_ms = span_ms
        self._index = -1  # the interval `_count` belongs to
        self._count = 0

    def total(self, now_ms: int) -> int:
        return self._count if now_ms // self.span_ms == self._index else 0

    def add(self, now_ms: int, count: int) -> int:
        index = now_ms // self.span_ms
        if index != self._index:
            self._index, self._count = index, 0
        self._count += count
        return self._count

    def retry_after_s(self, now_ms: int) -> int:
        """Whole seconds until the current interval ends (at least 1)."""
        return _seconds((now_ms // self.span_ms + 1) * self.span_ms - now_ms)


class WeightLimiter:
    """`ban_tolerance`: requests that may still arrive inside a Retry-After before the ban (each
    answered 429 again). 0, the default, bans the first one. Binance bans for *repeatedly*
    ignoring 429s; a small tolerance models that and lets a client's requests that were already
    in flight when the 429 went out arrive without a ban, while a client that keeps sending is
    still banned."""

    def __init__(self, limit: int = 6000, ban_ms: int = 120_000, ban_tolerance: int = 0,
                 window_ms: int = WEIGHT_WINDOW_MS) -> None:
        self.limit = limit
        self.ban_ms = ban_ms
        self.ban_tolerance = ban_tolerance
        self._window = FixedWindow(window_ms)
        self._retry_until = 0  # a 429 was answered; asking before this is ignoring it
        self._violations = 0  # requests inside the current Retry-After
        self._banned_until = 0
        self.bans = 0

    def used(self, now_ms: int) -> int:
        return self._window.total(now_ms)

    def charge(self, weight: int, now_ms: int, force_limit: bool = False) -> int:
        """Count a request; the used weight for `X-MBX-USED-WEIGHT-1M`, or a 429/418 error."""
        if now_ms < self._banned_until:
            raise self._ban_error(now_ms)
        if now_ms < self._retry_until:
            self._violations += 1
            if self._violations <= self.ban_tolerance:
                raise TooMuchWeight(_seconds(self._retry_until - now_ms))
            self.bans += 1
            self._banned_until = now_ms + self.ban_ms * 2 ** (self.bans - 1)
            raise self._ban_error(now_ms)
        if force_limit or self.used(now_ms) + weight > self.limit:
            retry_after = 1 if force_limit else self._window.retry_after_s(now_ms)
            self._retry_until = now_ms + retry_after * 1000
            self._violations = 0
            raise TooMuchWeight(retry_after)
        return self._window.add(now_ms, weight)

    def _ban_error(self, now_ms: int) -> IpBanned:
        return IpBanned(
            _seconds(self._banned_until - now_ms),
            f"Way too much request weight used; IP banned until {self._banned_until}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
        )


class OrderCounter:
    """New orders per account in 10 s (`X-MBX-ORDER-COUNT-10S`)."""

    def __init__(self, limit: int = 100, window_ms: int = ORDER_WINDOW_MS) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._windows: dict[str, FixedWindow] = {}

    def charge(self, account: str, now_ms: int) -> int:
        window = self._windows.setdefault(account, FixedWindow(self.window_ms))
        if window.total(now_ms) + 1 > self.limit:
            raise TooManyOrders(
                window.retry_after_s(now_ms),
                f"Too many new orders; current limit is {self.limit} orders per 10 SECOND.",
            )
        return window.add(now_ms, 1)


def _seconds(ms: int) -> int:
    return max(1, -(-ms // 1000))
