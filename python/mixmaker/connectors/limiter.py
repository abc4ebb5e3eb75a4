"""One rate limiter per venue account: every request of every caller waits here first.

A venue defines limits as pools (Binance: request weight per minute, orders per 10 s and per
day, raw requests per 5 min); one request may draw on several pools at once (an order costs
request weight *and* an order count) and is admitted only when all of them have room. Each pool
is a sliding window, which is stricter than the venue's fixed windows: no interval of the
window's length ever holds more than the limit, so no fixed window can either.

Waiting requests are served by priority (cancels, then creates, then queries), first come first
served within one. A waiter that does not fit blocks lower priorities only on the pools it is
waiting for, so a create held back by the order-count pool does not stall a balance query.

The venue's word overrides our count: used-weight headers raise a pool's count to what the
server saw (other processes share an IP), and a 429 or 418 closes every pool until its
`Retry-After`, or for an exponential backoff with jitter when it gives none.

`LimiterCore` is the pure scheduler (time is an argument, so tests drive it exactly);
`RateLimiter` runs it on the asyncio loop.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Mapping

from mixmaker.connectors.backoff import Backoff
from mixmaker.errors import MixmakerError


class Priority(IntEnum):
    CANCEL = 0
    CREATE = 1
    QUERY = 2


@dataclass(frozen=True, slots=True)
class Pool:
    """At most `limit` weight in any `window_s` seconds."""

    name: str
    limit: int
    window_s: float

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.window_s <= 0:
            raise ValueError(f"pool {self.name!r}: limit and window must be positive, got {self.limit}/{self.window_s}s")


class RateLimitError(MixmakerError):
    """Base of the limiter's errors."""


class CostError(RateLimitError, ValueError):
    """A request names an unknown pool, a negative weight, or more than a pool can ever hold."""


class LimiterClosedError(RateLimitError):
    """The limiter was closed while the request waited."""


class RequestNotSentError(RateLimitError):
    """The request waited in the limiter past its deadline and was never sent: a definite
    "did not happen", unlike a timeout on the wire."""


class _Window:
    """A sliding log of (time, weight) for one pool."""

    __slots__ = ("pool", "log", "used")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.log: deque[tuple[float, int]] = deque()
        self.used = 0

    def expire(self, now: float) -> None:
        # `t + window`, the same float `room_at` promises, so a wake-up at that time finds room.
        window = self.pool.window_s
        while self.log and self.log[0][0] + window <= now:
            self.used -= self.log.popleft()[1]

    def fits(self, weight: int) -> bool:
        return self.used + weight <= self.pool.limit

    def take(self, weight: int, now: float) -> None:
        if weight:
            self.log.append((now, weight))
            self.used += weight

    def room_at(self, weight: int) -> float:
        """When `weight` fits, given no new traffic (after expire)."""
        excess = self.used + weight - self.pool.limit
        if excess <= 0:
            return 0.0
        for t, w in self.log:
            excess -= w
            if excess <= 0:
                return t + self.pool.window_s
        raise AssertionError("weight above the limit is refused at submit")

    def raise_to(self, used: int, now: float) -> None:
        """The venue counted more than we did: book the difference now (it expires a window later)."""
        if used > self.used:
            self.take(used - self.used, now)


@dataclass(slots=True)
class _Ticket:
    priority: int
    seq: int
    cost: tuple[tuple[str, int], ...]
    submitted: float

    def key(self) -> tuple[int, int]:
        return (self.priority, self.seq)


@dataclass
class LimiterStats:
    admitted: int = 0
    queued: int = 0
    max_queued: int = 0
    waited_s_total: float = 0.0
    waited_s_max: float = 0.0
    rate_limited: int = 0  # 429s
    banned: int = 0  # 418s
    blocked_until: float = 0.0
    used: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)

    @property
    def waited_s_mean(self) -> float:
        return self.waited_s_total / self.admitted if self.admitted else 0.0


class LimiterCore:
    """The scheduler, with time passed in. Not thread-safe; one per venue account."""

    def __init__(
        self,
        pools: list[Pool],
        *,
        backoff_s: float = 1.0,
        backoff_max_s: float = 120.0,
        seed: int | None = None,
    ) -> None:
        if not pools:
            raise ValueError("a limiter needs at least one pool")
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pool names repeat: {names}")
        self.windows = {p.name: _Window(p) for p in pools}
        self._backoff = Backoff(backoff_s, backoff_max_s, seed)
        self._strikes = 0  # 429/418s in a row, for the backoff without Retry-After
        self._queue: list[_Ticket] = []  # sorted by (priority, seq)
        self._seq = 0
        self.stats = LimiterStats(limits={p.name: p.limit for p in pools})

    # ------------------------------------------------------------ requests
    def pass_now(self, cost: Mapping[str, int], now: float) -> bool:
        """The fast path: nobody waits, nothing is blocked and every pool has room, so the
        request goes at once (True) without joining the queue. False: `submit` it."""
        if self._queue or now < self.stats.blocked_until:
            return False
        self._check(cost)
        windows = self.windows
        for name, w in cost.items():
            win = windows[name]
            win.expire(now)
            if not win.fits(w):
                return False
        used = self.stats.used
        for name, w in cost.items():
            win = windows[name]
            win.take(w, now)
            used[name] = win.used
        self.stats.admitted += 1
        return True

    def _check(self, cost: Mapping[str, int]) -> None:
        for name, w in cost.items():
            win = self.windows.get(name)
            if win is None:
                raise CostError(f"unknown pool {name!r} (pools: {sorted(self.windows)})")
            if not isinstance(w, int) or w < 0:
                raise CostError(f"pool {name!r}: weight must be a non-negative int, got {w!r}")
            if w > win.pool.limit:
                raise CostError(f"pool {name!r}: weight {w} can never fit its limit {win.pool.limit}")

    def submit(self, cost: Mapping[str, int], priority: Priority, now: float) -> _Ticket:
        self._check(cost)
        self._seq += 1
        t = _Ticket(int(priority), self._seq, tuple(cost.items()), now)
        bisect.insort(self._queue, t, key=_Ticket.key)
        self.stats.queued = len(self._queue)
        self.stats.max_queued = max(self.stats.max_queued, self.stats.queued)
        return t

    def withdraw(self, ticket: _Ticket) -> None:
        """A waiter gave up (cancelled, timed out): it leaves the queue and uses nothing."""
        try:
            self._queue.remove(ticket)
        except ValueError:
            return
        self.stats.queued = len(self._queue)

    def admit(self, now: float) -> tuple[list[_Ticket], float | None]:
        """Admits every waiter that may go now; returns them and when to look again (None if
        nobody waits)."""
        for w in self.windows.values():
            w.expire(now)
        if not self._queue:
            return [], None
        if now < self.stats.blocked_until:
            return [], self.stats.blocked_until
        admitted: list[_Ticket] = []
        held: set[str] = set()  # pools a higher-priority waiter is waiting for
        wake: float | None = None
        for t in self._queue:
            if any(name in held for name, _ in t.cost):
                continue
            if all(self.windows[name].fits(w) for name, w in t.cost):
                for name, w in t.cost:
                    self.windows[name].take(w, now)
                admitted.append(t)
                continue
            short = [(name, w) for name, w in t.cost if not self.windows[name].fits(w)]
            held.update(name for name, _ in short)
            at = max(self.windows[name].room_at(w) for name, w in short)
            wake = at if wake is None else min(wake, at)
        if admitted:
            gone = {id(t) for t in admitted}
            self._queue = [t for t in self._queue if id(t) not in gone]
            self.stats.queued = len(self._queue)
            for t in admitted:
                waited = now - t.submitted
                self.stats.admitted += 1
                self.stats.waited_s_total += waited
                self.stats.waited_s_max = max(self.stats.waited_s_max, waited)
        for name, w in self.windows.items():
            self.stats.used[name] = w.used
        return admitted, wake

    # ------------------------------------------------------------ venue feedback
    def observe_used(self, pool: str, used: int, now: float) -> None:
        """The venue's count for `pool` (a used-weight header)."""
        win = self.windows.get(pool)
        if win is not None:
            win.expire(now)
            win.raise_to(used, now)
            self.stats.used[pool] = win.used

    def rate_limited(self, now: float, retry_after_s: float | None, *, banned: bool = False) -> float:
        """A 429 (or a 418 ban): nothing goes out until the returned time."""
        self._strikes += 1
        if banned:
            self.stats.banned += 1
        else:
            self.stats.rate_limited += 1
        if retry_after_s is None or retry_after_s < 0:
            retry_after_s = self._backoff.delay(self._strikes)
        self.stats.blocked_until = max(self.stats.blocked_until, now + retry_after_s)
        return self.stats.blocked_until

    def succeeded(self) -> None:
        """A request went through: the backoff starts again from its first step."""
        self._strikes = 0


class RateLimiter:
    """`LimiterCore` on the running asyncio loop: `await limiter.acquire(cost, priority)`."""

    def __init__(self, pools: list[Pool], *, backoff_s: float = 1.0, backoff_max_s: float = 120.0, seed: int | None = None) -> None:
        self.core = LimiterCore(pools, backoff_s=backoff_s, backoff_max_s=backoff_max_s, seed=seed)
        self._waiting: dict[int, asyncio.Future[float]] = {}  # ticket seq -> its waiter
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    @property
    def stats(self) -> LimiterStats:
        return self.core.stats

    async def acquire(self, cost: Mapping[str, int], priority: Priority = Priority.QUERY) -> float:
        """Waits until the request may go out; returns the seconds it waited. Cancelling the
        caller withdraws the request (it uses nothing)."""
        if self._closed:
            raise LimiterClosedError("the rate limiter is closed")
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.core.pass_now(cost, now):
            return 0.0
        ticket = self.core.submit(cost, priority, now)
        fut: asyncio.Future[float] = loop.create_future()
        self._waiting[ticket.seq] = fut
        self._pump()
        try:
            return await fut
        finally:
            if self._waiting.pop(ticket.seq, None) is not None:
                # Still queued: the caller was cancelled. Its place may free lower priorities.
                self.core.withdraw(ticket)
                if not self._closed:
                    self._pump()

    def observe_used(self, pool: str, used: int) -> None:
        """The venue's own count for a pool (from a used-weight header)."""
        self.core.observe_used(pool, used, self._now())

    def rate_limited(self, retry_after_s: float | None, *, banned: bool = False) -> float:
        """A 429 (or 418): returns the seconds until requests flow again."""
        now = self._now()
        until = self.core.rate_limited(now, retry_after_s, banned=banned)
        self._arm(until)
        return until - now

    def succeeded(self) -> None:
        self.core.succeeded()

    def close(self) -> None:
        """Fails every waiter with LimiterClosedError; later acquires fail at once."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        waiting, self._waiting = self._waiting, {}
        for t in list(self.core._queue):
            self.core.withdraw(t)
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(LimiterClosedError("the rate limiter was closed while this request waited"))

    def _pump(self) -> None:
        now = self._now()
        admitted, wake = self.core.admit(now)
        for t in admitted:
            fut = self._waiting.pop(t.seq)
            if not fut.done():
                fut.set_result(now - t.submitted)
        if wake is not None:
            self._arm(wake)

    def _arm(self, at: float) -> None:
        if self._timer is not None and self._timer_at is not None and self._timer_at <= at:
            return  # an earlier wake-up is set; it re-arms for later ones
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = asyncio.get_running_loop().call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        self._pump()
