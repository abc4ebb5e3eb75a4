"""One rate limiter per venue account: every request of every caller waits here first.

A venue defines limits as pools (Binance: request weight per minute, orders per 10 s and per
day, raw requests per 5 min); one request may draw on several pools at once (an order costs
request weight *and* an order count) and is admitted only when all of them have room.

Counting against the venue's clock, not ours. The venue counts a request when it *arrives*,
which is some time after we admit it and before its answer comes back. So a request occupies
its pools from admission until its answer arrives, and then for one more window (`window_s`)
after that: whatever the latency, no interval of the window's length at the venue can then see
more than we allowed — whether the venue counts sliding windows or fixed ones (Binance's fixed
minutes of server time are intervals of that length too), and whatever its clock says. A
request whose answer never came (a timeout) is assumed to arrive up to `unanswered_s` after we
gave up. Each pool keeps `headroom` (a fraction of its limit) unused, for weights the venue
counts and we did not expect.

In flight. At most `max_in_flight` tracked requests are on the wire at once: when the venue
sends a 429, the ones already on the wire land inside its Retry-After, which Binance may punish
with a ban (the simulator bans the first). A request we gave up on (a timeout) may still be on
its way: it keeps its slot for `unanswered_s` after. A 429 or 418 closes every pool until its
`Retry-After` (or an exponential backoff with jitter when it gives none), and after it one
request at a time goes until one succeeds.

Waiting requests are served by priority (cancels, then creates, then queries), first come first
served within one. A waiter that does not fit blocks lower priorities only on the pools it is
waiting for, so a create held back by the order-count pool does not stall a balance query.

The venue's word overrides our count: used-weight headers raise a pool's count to what the
server saw (other processes share an IP).

Two ways in. `start(cost)` ... `finish(cost)` (or `async with limiter.request(cost)`) tracks a
request from admission to its answer and holds an in-flight slot: every request to a venue
goes this way. `acquire(cost)` only admits: the weight counts from admission, no slot is held;
it is for work whose answer cannot be observed.

`LimiterCore` is the pure scheduler (time is an argument, so tests drive it exactly);
`RateLimiter` runs it on the asyncio loop.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import TracebackType

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
    """One pool: weight on the wire (`held`, until answered) plus a log of (answered at, weight)
    that leaves a window after its time. `used` is both."""

    __slots__ = ("held", "limit", "log", "pool", "used", "window")

    def __init__(self, pool: Pool, headroom: float) -> None:
        self.pool = pool
        self.limit = max(1, pool.limit - int(pool.limit * headroom))
        self.window = pool.window_s
        self.log: deque[tuple[float, int]] = deque()
        self.used = 0
        self.held = 0

    def expire(self, now: float) -> None:
        # `t + window`, the same float `room_at` promises, so a wake-up at that time finds room.
        # The log is in time order except for unanswered requests (booked a little later than
        # their neighbours); an entry behind one of those waits for it: counted longer, never less.
        log, window = self.log, self.window
        while log and log[0][0] + window <= now:
            self.used -= log.popleft()[1]

    def fits(self, weight: int) -> bool:
        return self.used + weight <= self.limit

    def take(self, weight: int, now: float) -> None:
        """Admitted untracked: counted as if the venue saw it now."""
        if weight:
            self.log.append((now, weight))
            self.used += weight

    def room_at(self, weight: int) -> float | None:
        """When `weight` fits given no new traffic (after expire); None if it needs weight that
        is still on the wire (it fits some time after an answer: `finish` looks again)."""
        excess = self.used + weight - self.limit
        if excess <= 0:
            return 0.0
        latest = 0.0
        for t, w in self.log:
            latest = max(latest, t)
            excess -= w
            if excess <= 0:
                return latest + self.window
        return None

    def raise_to(self, used: int, now: float) -> None:
        """The venue counted more than we did: book the difference now (it expires a window later)."""
        if used > self.used:
            self.take(used - self.used, now)


@dataclass(slots=True)
class _Ticket:
    priority: int
    seq: int
    cost: Mapping[str, int]
    submitted: float
    tracked: bool  # holds an in-flight slot until finish()

    def key(self) -> tuple[int, int]:
        return (self.priority, self.seq)


@dataclass
class LimiterStats:
    admitted: int = 0
    queued: int = 0
    max_queued: int = 0
    in_flight: int = 0
    max_in_flight: int = 0  # the most tracked requests on the wire at once
    unanswered: int = 0  # tracked requests finished without an answer (timeouts, lost connections)
    waited_s_total: float = 0.0
    waited_s_max: float = 0.0
    rate_limited: int = 0  # 429s
    banned: int = 0  # 418s
    blocked_until: float = 0.0
    used: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)  # usable: the venue's limit less the headroom

    @property
    def waited_s_mean(self) -> float:
        return self.waited_s_total / self.admitted if self.admitted else 0.0


class LimiterCore:
    """The scheduler, with time passed in. Not thread-safe; one per venue account.

    `max_in_flight`: tracked requests on the wire at once (None: no cap). `headroom`: the
    fraction of each limit left unused. `unanswered_s`: how long after we gave up on a request
    it may still arrive at the venue.
    """

    def __init__(
        self,
        pools: list[Pool],
        *,
        max_in_flight: int | None = None,
        headroom: float = 0.05,
        unanswered_s: float = 2.0,
        backoff_s: float = 1.0,
        backoff_max_s: float = 120.0,
        seed: int | None = None,
    ) -> None:
        if not pools:
            raise ValueError("a limiter needs at least one pool")
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pool names repeat: {names}")
        if max_in_flight is not None and (not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ValueError(f"max_in_flight must be a positive int or None, got {max_in_flight!r}")
        if not 0.0 <= headroom < 1.0:
            raise ValueError(f"headroom is a fraction of the limit in [0, 1), got {headroom!r}")
        if unanswered_s < 0:
            raise ValueError(f"unanswered_s must be >= 0, got {unanswered_s!r}")
        self.windows = {p.name: _Window(p, headroom) for p in pools}
        self.max_in_flight = max_in_flight
        self.unanswered_s = unanswered_s
        self.in_flight = 0
        # Until when each request we gave up on may still land (sorted): it keeps its in-flight
        # slot that long, or the next request could be on the wire beside it after all.
        self._unanswered: list[float] = []
        self._probing = False  # after a 429/418: one request at a time until one succeeds
        self._backoff = Backoff(backoff_s, backoff_max_s, seed)
        self._strikes = 0  # 429/418s in a row, for the backoff without Retry-After
        self._queue: list[_Ticket] = []  # sorted by (priority, seq)
        self._seq = 0
        self.stats = LimiterStats(limits={name: w.limit for name, w in self.windows.items()})

    def _slots(self, now: float) -> int | None:
        """Tracked requests that may still go out now (None: no cap)."""
        cap = 1 if self._probing else self.max_in_flight
        return None if cap is None else cap - self._on_wire(now)

    def _on_wire(self, now: float) -> int:
        """Tracked requests that may be on the wire: in flight, or given up on but maybe still landing."""
        late = self._unanswered
        while late and late[0] <= now:
            late.pop(0)
        return self.in_flight + len(late)

    # ------------------------------------------------------------ requests
    def pass_now(self, cost: Mapping[str, int], now: float, *, tracked: bool = False) -> bool:
        """The fast path: nobody waits, nothing is blocked, a slot is free (if `tracked`) and
        every pool has room, so the request goes at once (True) without joining the queue.
        False: `submit` it."""
        if self._queue or now < self.stats.blocked_until:
            return False
        if tracked:
            cap = 1 if self._probing else self.max_in_flight
            if cap is not None and self._on_wire(now) >= cap:
                return False
        windows = self.windows
        for name, w in cost.items():
            win = windows.get(name)
            if win is None or type(w) is not int or w < 0 or w > win.limit:
                self._check(cost)  # raises CostError (or lets an int subclass through)
                win = windows[name]
            log = win.log
            if log and log[0][0] + win.window <= now:
                win.expire(now)
            if win.used + w > win.limit:
                return False
        self._take(cost, now, tracked)
        self.stats.admitted += 1
        return True

    def _take(self, cost: Mapping[str, int], now: float, tracked: bool) -> None:
        used, windows = self.stats.used, self.windows
        if tracked:
            for name, w in cost.items():
                win = windows[name]
                win.held += w
                win.used += w
                used[name] = win.used
            self.in_flight += 1
            stats = self.stats
            stats.in_flight = self.in_flight
            stats.max_in_flight = max(stats.max_in_flight, self.in_flight)
        else:
            for name, w in cost.items():
                win = windows[name]
                win.take(w, now)
                used[name] = win.used

    def finish(self, cost: Mapping[str, int], now: float, *, answered: bool = True, sent: bool = True) -> None:
        """A tracked request is over: its answer came now (`answered`), or we gave up on it now
        (it may still arrive up to `unanswered_s` later), or it never left (`sent=False`: its
        weight is returned). `cost` is the mapping it was admitted with."""
        if self.in_flight <= 0:
            raise RateLimitError("finish() without a tracked request in flight")
        self.in_flight -= 1
        stats = self.stats
        stats.in_flight = self.in_flight
        used, windows = stats.used, self.windows
        if not sent:
            for name, w in cost.items():
                win = windows[name]
                win.held -= w
                win.used -= w
                used[name] = win.used
            return
        if not answered:
            now += self.unanswered_s
            stats.unanswered += 1
            if self.max_in_flight is not None and self.unanswered_s > 0:
                bisect.insort(self._unanswered, now)
        for name, w in cost.items():
            win = windows[name]
            win.held -= w
            if w:
                win.log.append((now, w))

    def _check(self, cost: Mapping[str, int]) -> None:
        for name, w in cost.items():
            win = self.windows.get(name)
            if win is None:
                raise CostError(f"unknown pool {name!r} (pools: {sorted(self.windows)})")
            if not isinstance(w, int) or w < 0:
                raise CostError(f"pool {name!r}: weight must be a non-negative int, got {w!r}")
            if w > win.limit:
                raise CostError(f"pool {name!r}: weight {w} can never fit its usable limit {win.limit} "
                                f"({win.pool.limit} less headroom)")

    def holding_back(self, cost: Mapping[str, int], now: float, *, tracked: bool = False) -> str:
        """What keeps a request of `cost` back now, in words (for the error that says it was not sent)."""
        reasons = []
        slots = self._slots(now)
        if tracked and slots is not None and slots <= 0:
            late = f" and {len(self._unanswered)} given up on that may still land" if self._unanswered else ""
            reasons.append(f"{self.in_flight} in flight{late}, the cap")
        if now < self.stats.blocked_until:
            reasons.append(f"blocked {self.stats.blocked_until - now:.1f}s more after a 429/418")
        if self._probing:
            reasons.append("one at a time after a 429")
        for name, w in cost.items():
            win = self.windows.get(name)
            if win is not None:
                win.expire(now)
                if not win.fits(w):
                    reasons.append(f"{name} {win.used}+{w} over {win.limit} ({win.held} on the wire)")
        return ", ".join(reasons) or "nothing now"

    def submit(self, cost: Mapping[str, int], priority: Priority, now: float, *, tracked: bool = False) -> _Ticket:
        self._check(cost)
        self._seq += 1
        t = _Ticket(int(priority), self._seq, cost, now, tracked)
        bisect.insort(self._queue, t, key=_Ticket.key)
        self.stats.queued = len(self._queue)
        self.stats.max_queued = max(self.stats.max_queued, self.stats.queued)
        return t

    def withdraw(self, ticket: _Ticket) -> bool:
        """A waiter gave up (cancelled, timed out): it leaves the queue and uses nothing.
        False if it was not queued (already admitted, or withdrawn)."""
        try:
            self._queue.remove(ticket)
        except ValueError:
            return False
        self.stats.queued = len(self._queue)
        return True

    def admit(self, now: float) -> tuple[list[_Ticket], float | None]:
        """Admits every waiter that may go now; returns them and when to look again (None if
        nobody waits, or if they wait for an answer: `finish` is the next time to look)."""
        for w in self.windows.values():
            w.expire(now)
        if not self._queue:
            return [], None
        if now < self.stats.blocked_until:
            return [], self.stats.blocked_until
        admitted: list[_Ticket] = []
        held: set[str] = set()  # pools a higher-priority waiter is waiting for
        slots = self._slots(now)
        wake: float | None = None
        for t in self._queue:
            if t.tracked and slots is not None and slots <= 0:
                if self._unanswered and (wake is None or self._unanswered[0] < wake):
                    wake = self._unanswered[0]  # a slot a given-up request holds frees then
                continue  # waits for an answer; untracked work behind it may still go
            cost = t.cost
            if any(name in held for name in cost):
                continue
            windows = self.windows
            if all(windows[name].fits(w) for name, w in cost.items()):
                self._take(cost, now, t.tracked)
                if t.tracked and slots is not None:
                    slots -= 1
                admitted.append(t)
                continue
            short = [(name, w) for name, w in cost.items() if not windows[name].fits(w)]
            held.update(name for name, _ in short)
            times = [windows[name].room_at(w) for name, w in short]
            known = [x for x in times if x is not None]
            if len(known) == len(times):  # else it waits for an answer: finish() looks again
                at = max(known)
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
        """A 429 (or a 418 ban): nothing goes out until the returned time, then one request at
        a time until one succeeds."""
        self._strikes += 1
        self._probing = True
        if banned:
            self.stats.banned += 1
        else:
            self.stats.rate_limited += 1
        if retry_after_s is None or retry_after_s < 0:
            retry_after_s = self._backoff.delay(self._strikes)
        self.stats.blocked_until = max(self.stats.blocked_until, now + retry_after_s)
        return self.stats.blocked_until

    def succeeded(self) -> None:
        """A request went through: the backoff starts again from its first step, and the
        in-flight cap is back to its configured size."""
        self._strikes = 0
        self._probing = False


class RateLimiter:
    """`LimiterCore` on the running asyncio loop.

        async with limiter.request(cost, Priority.CREATE) as req:
            answer = await send()   # leaving the block (or req.answered()) marks the answer

    or `await limiter.start(cost, priority)` ... `limiter.finish(cost, answered=...)`.
    """

    def __init__(self, pools: list[Pool], *, max_in_flight: int | None = None, headroom: float = 0.05,
                 unanswered_s: float = 2.0, backoff_s: float = 1.0, backoff_max_s: float = 120.0,
                 seed: int | None = None) -> None:
        self.core = LimiterCore(pools, max_in_flight=max_in_flight, headroom=headroom, unanswered_s=unanswered_s,
                                backoff_s=backoff_s, backoff_max_s=backoff_max_s, seed=seed)
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

    async def start(self, cost: Mapping[str, int], priority: Priority = Priority.QUERY, *,
                    timeout: float | None = None) -> float:
        """Waits until the request may go out and holds an in-flight slot for it; returns the
        seconds it waited. The caller must `finish(cost, ...)` once the answer came or it gave
        up. Raises RequestNotSentError after `timeout` seconds in the queue; cancelling the
        caller withdraws the request (it uses nothing)."""
        return await self._enter(cost, priority, timeout, tracked=True)

    def finish(self, cost: Mapping[str, int], *, answered: bool = True, sent: bool = True) -> None:
        """The request `start` admitted is over (see `LimiterCore.finish`); waiters for its slot go.
        Report a 429/418 answer (`rate_limited`) before this: a waiter admitted here would
        otherwise go out inside the Retry-After."""
        core = self.core
        core.finish(cost, self._now(), answered=answered, sent=sent)
        if core._queue and not self._closed:
            self._pump()

    def request(self, cost: Mapping[str, int], priority: Priority = Priority.QUERY, *,
                timeout: float | None = None) -> Request:
        """`async with` form of start/finish: leaving the block normally means the answer came;
        leaving it by an exception means it did not, unless `answered()` was called."""
        return Request(self, cost, priority, timeout)

    async def acquire(self, cost: Mapping[str, int], priority: Priority = Priority.QUERY, *,
                      timeout: float | None = None) -> float:
        """Admits an untracked request (counted from now, no in-flight slot); returns the seconds
        it waited. For requests to a venue use `start`/`request`."""
        return await self._enter(cost, priority, timeout, tracked=False)

    async def _enter(self, cost: Mapping[str, int], priority: Priority, timeout: float | None, *, tracked: bool) -> float:
        if self._closed:
            raise LimiterClosedError("the rate limiter is closed")
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.core.pass_now(cost, now, tracked=tracked):
            return 0.0
        ticket = self.core.submit(cost, priority, now, tracked=tracked)
        fut: asyncio.Future[float] = loop.create_future()
        self._waiting[ticket.seq] = fut
        expiry = None if timeout is None else loop.call_later(timeout, self._expire, ticket, timeout)
        self._pump()
        try:
            return await fut
        except BaseException:
            if tracked and fut.done() and not fut.cancelled() and fut.exception() is None:
                # Admitted, but the caller was cancelled before it could send: give the slot back.
                self.finish(cost, sent=False)
            raise
        finally:
            if expiry is not None:
                expiry.cancel()
            if self._waiting.pop(ticket.seq, None) is not None:
                # Still queued: the caller was cancelled. Its place may free lower priorities.
                self.core.withdraw(ticket)
                if not self._closed:
                    self._pump()

    def _expire(self, ticket: _Ticket, timeout: float) -> None:
        fut = self._waiting.pop(ticket.seq, None)
        if fut is None or fut.done() or not self.core.withdraw(ticket):
            return
        fut.set_exception(RequestNotSentError(
            f"waited {timeout:.1f}s in the rate limiter (queue {self.core.stats.queued}, "
            f"in flight {self.core.in_flight}; {self.core.holding_back(ticket.cost, self._now(), tracked=ticket.tracked)}); not sent"))
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
        if self.core._queue and not self._closed:
            self._pump()  # the cap is back to its size: more may go

    def close(self) -> None:
        """Fails every waiter with LimiterClosedError; later requests fail at once."""
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
            elif t.tracked:
                self.core.finish(t.cost, now, sent=False)  # its waiter is gone: the slot is free again
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


class Request:
    """One tracked request (see `RateLimiter.request`)."""

    __slots__ = ("_answered", "_cost", "_limiter", "_priority", "_timeout", "waited_s")

    def __init__(self, limiter: RateLimiter, cost: Mapping[str, int], priority: Priority, timeout: float | None) -> None:
        self._limiter, self._cost, self._priority, self._timeout = limiter, cost, priority, timeout
        self._answered = False
        self.waited_s = 0.0

    def answered(self) -> None:
        """The venue's answer arrived (call it before raising on a bad answer)."""
        self._answered = True

    async def __aenter__(self) -> Request:
        self.waited_s = await self._limiter.start(self._cost, self._priority, timeout=self._timeout)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._limiter.finish(self._cost, answered=self._answered or exc_type is None)
