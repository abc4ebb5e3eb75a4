"""The quote executor: turns a controller's Decision into the fewest create/cancel requests,
through the order tracker (so every order is journaled before it is sent).

- A live quote is kept when an unmatched proposed quote on its side is within tolerance of its
  price (sizes are not compared, as in Hummingbot); the rest are replaced.
- Replacements are created first and the old orders cancelled after, so the book never loses
  our quotes, unless the free balance cannot fund the new orders: then cancels go first, and
  the creates wait for a later tick if the venue has not released the funds yet.
- A rejected create backs that (side, level) off: 1, 2, 4 ... seconds up to a cap, reset by the
  next success.
- Partial fills leave the order working; fills reach the controller through `on_fill`.
States: NOT_STARTED -> RUNNING -> SHUTTING_DOWN (cancelling everything) -> TERMINATED.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from mixmaker import eager
from mixmaker._core import OrderState, OrderView, Side
from mixmaker.orders import FillEvent
from mixmaker.strategy.config import NS
from mixmaker.strategy.decision import Decision, Proposal, Quote
from mixmaker.strategy.errors import ExecutorStateError
from mixmaker.strategy.kernel import within_tolerance
from mixmaker.strategy.market import BalanceSource, MarketRules, OwnOrder
from mixmaker.strategy.runnable import RunnableStatus
from mixmaker.strategy.single_flight import SingleFlight

_PENDING_CANCEL, _FAILED, _FILLED = OrderState.PENDING_CANCEL, OrderState.FAILED, OrderState.FILLED
_BUY, _SELL = Side.BUY, Side.SELL
# Python enum members cost a descriptor call per class-attribute read: the hot paths read these.
_RUNNING, _SHUTTING_DOWN = RunnableStatus.RUNNING, RunnableStatus.SHUTTING_DOWN
_new = tuple.__new__  # OwnOrder from a tuple of all its fields (its Python-level __new__ skipped)


class QuoteListener(Protocol):
    """What a controller hears back (PureMarketMaking and AvellanedaStoikov implement it)."""

    def on_placed(self, client_id: str, quote: Quote, now_ns: int) -> None: ...
    def on_fill(self, client_id: str, side: Side, price: int, qty: int, fully_filled: bool, now_ns: int) -> None: ...
    def on_closed(self, client_id: str) -> None: ...


class OrderEntry(Protocol):
    """What the executor needs of the order tracker (a `ClientOrderTracker`, or a view of it
    that names who owns the orders, as a pool's does)."""

    @property
    def version(self) -> int: ...
    async def create(self, symbol: str, side: Side, price: int, quantity: int) -> str: ...
    async def cancel(self, client_id: str) -> object: ...  # the state after it (not read)
    def get(self, client_id: str) -> OrderView | None: ...


@dataclass(slots=True)
class Placed:
    quote: Quote
    created_ns: int


class ActionReport(NamedTuple):
    """What one decision's action did (a named tuple: read-only, built in C)."""

    created: int
    cancelled: int
    kept: int
    rejected: int
    backed_off: int
    cancel_first: bool


# The last apply that changed nothing: (own orders, proposal, refresh, create, tolerance, hold,
# its report, the decision itself).
_IdleAfter = tuple[tuple[OwnOrder, ...], Proposal | None, bool, bool, int, frozenset[str], ActionReport, Decision]


class QuoteExecutor:
    def __init__(
        self,
        tracker: OrderEntry,
        rules: MarketRules,
        balances: BalanceSource,
        listener: QuoteListener,
        now_ns: Callable[[], int],
        *,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.tracker = tracker
        self.rules = rules
        self.balances = balances
        self.listener = listener
        self.now_ns = now_ns
        self.backoff_base_ns = int(backoff_base_s * NS)
        self.backoff_max_ns = int(backoff_max_s * NS)
        self.status = RunnableStatus.NOT_STARTED
        self.placed: dict[str, Placed] = {}
        self.backoff: dict[tuple[Side, int], tuple[int, int]] = {}  # (side, level) -> (until_ns, failures)
        self.stats: Counter[str] = Counter()
        self._flight = SingleFlight(f"quote executor {rules.symbol}")
        # own_orders() as of a tracker version, and the version the last sweep looked at
        self._own: tuple[OwnOrder, ...] | None = None
        self._own_at = -1
        self._swept_at = -1
        # (own orders, how many of them have a cancel in flight): the last view, kept with them
        self._pair: tuple[tuple[OwnOrder, ...], int] | None = None
        # (own orders, proposal, refresh, create, tolerance, hold, report) of the last apply that
        # changed nothing, to answer the same decision on the same orders without redoing it.
        self._idle_after: _IdleAfter | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.status != RunnableStatus.NOT_STARTED:
            raise ExecutorStateError(f"cannot start a quote executor that is {self.status.name}")
        self.status = RunnableStatus.RUNNING

    async def stop(self) -> None:
        """SHUTTING_DOWN: cancel every order we placed. TERMINATED once none is left (at once
        when the venue confirms synchronously, else when the user stream reports them closed)."""
        if self.status == RunnableStatus.TERMINATED:
            return
        self.status = RunnableStatus.SHUTTING_DOWN
        await self.idle()
        self._sweep()
        await self._cancel_all(list(self.placed), "executor stopping")
        self._sweep()

    # ------------------------------------------------------------------ views
    def own_orders(self) -> tuple[OwnOrder, ...]:
        own = self._own
        version = self.tracker.version
        if own is not None and self._own_at == version == self._swept_at and self.status is _RUNNING:
            return own  # nothing changed in the tracker since it was built and swept
        self._own = own = self._scan(version, view=True)
        self._own_at = version
        return own

    @property
    def cancels_in_flight(self) -> int:
        return self._current()[1]

    def view(self) -> tuple[tuple[OwnOrder, ...], int] | None:
        """(own orders, cancels in flight) for this tick's snapshot, in one call; None while a
        decision is still being carried out (a snapshot now would show orders half-placed)."""
        task = self._flight._task
        if task is not None and not task.done():
            return None
        pair = self._pair
        if (pair is not None and pair[0] is self._own and self._own_at == self.tracker.version
                and self._swept_at == self._own_at and self.status is _RUNNING):
            return pair  # nothing changed since the last tick's view (the commonest tick)
        return self._current()

    def _current(self) -> tuple[tuple[OwnOrder, ...], int]:
        """Own orders and cancels in flight, rebuilt only when the tracker changed since the last look
        (this runs every tick of every decision)."""
        own = self._own
        if (own is None or self._own_at != self.tracker.version or self._swept_at != self._own_at
                or self.status is not _RUNNING):
            own = self.own_orders()
        pair = self._pair
        if pair is None or pair[0] is not own:
            pair = self._pair = (own, sum(1 for o in own if o.state is _PENDING_CANCEL))
        return pair

    @property
    def busy(self) -> bool:
        task = self._flight._task  # SingleFlight.busy, read every tick without a second property
        return task is not None and not task.done()

    def report(self) -> dict[str, Any]:
        self._sweep()
        f = self._flight
        return {"status": self.status.name, "live_orders": len(self.placed), "backoffs": len(self.backoff),
                "decisions_skipped_busy": f.skipped, "action_errors": f.errors, "last_error": f.last_error,
                **dict(self.stats)}

    # ------------------------------------------------------------------ acting
    def submit(self, decision: Decision, now_ns: int) -> bool:
        """Act on `decision` in the background (called from a synchronous tick). A decision that
        arrives while the previous one is still being carried out is skipped, not queued: the
        next tick's decision will be fresher."""
        if self.status is not _RUNNING:
            return False
        kept = self.kept_by(decision)
        if kept is not None:
            self.stats["kept"] += kept  # `_repeat`'s commonest case
            return True
        task = self._flight._task
        if (task is None or task.done()) and self._repeat(decision) is not None:
            return True  # carried out already: the same decision on the same orders changed nothing
        return self._flight.start(lambda: self.apply(decision, now_ns))

    def kept_by(self, decision: Decision) -> int | None:
        """How many orders `submit(decision)` would keep, when that is all it would do: `decision`
        is the one last carried out, on the same orders, and it changed nothing. None otherwise."""
        idle = self._idle_after
        if (idle is not None and idle[7] is decision and idle[0] is self._own and self._own_at == self.tracker.version
                and self._swept_at == self._own_at and self._flight._task is None and self.status is _RUNNING):
            return idle[6].kept
        return None

    async def idle(self) -> None:
        """Wait for the decision being carried out, if any."""
        await self._flight.idle()

    def _repeat(self, d: Decision) -> ActionReport | None:
        """The report of `d` when it is the decision last carried out, on the same orders, and
        that changed nothing: it changes nothing again (nothing in `_apply` depends on the time
        when nothing is created). None otherwise."""
        idle = self._idle_after
        if idle is None:
            return None
        own = self._own  # own_orders(), without the call while nothing changed
        if (own is None or self._own_at != self.tracker.version or self._swept_at != self._own_at
                or self.status is not _RUNNING):
            own = self.own_orders()
        if idle[0] is not own:
            return None
        if idle[7] is d or (not d.cancel and not d.renew and d.proposal is idle[1] and d.refresh == idle[2]
                            and d.create == idle[3] and d.tolerance == idle[4] and d.hold == idle[5]):
            report: ActionReport = idle[6]
            self.stats["kept"] += report.kept
            return report
        return None

    async def apply(self, d: Decision, now_ns: int) -> ActionReport:
        repeated = self._repeat(d)
        if repeated is not None:
            return repeated
        own = self.own_orders()  # swept: only live orders
        report = await self._apply(d, now_ns, own)
        if not report.created and not report.cancelled and not report.backed_off and not d.cancel and not d.renew:
            self._idle_after = (self.own_orders(), d.proposal, d.refresh, d.create, d.tolerance, d.hold, report, d)
        else:
            self._idle_after = None
        return report

    async def _apply(self, d: Decision, now_ns: int, own: tuple[OwnOrder, ...]) -> ActionReport:
        placed = self.placed
        cancels: dict[str, str] = {cid: why for cid, why in d.cancel if cid in placed} if d.cancel else {}
        creates: list[Quote] = []
        kept = 0
        if d.refresh or d.create:
            hold = d.hold
            wanted = d.proposal
            tol = d.tolerance
            buys: list[OwnOrder] = []
            sells: list[OwnOrder] = []
            for o in own:  # the working orders: not cancelled here, not held, not leaving
                cid = o.client_id
                if cid not in cancels and cid not in hold and o.state != _PENDING_CANCEL:
                    (buys if o.side == _BUY else sells).append(o)
            for side, live in ((_BUY, buys), (_SELL, sells)):
                if len(live) > 1:
                    live.sort(key=_best_first_buy if side == _BUY else _best_first_sell)
                quotes = list(wanted.buys if side == _BUY else wanted.sells) if wanted is not None else []
                for o in live:
                    price = o.price
                    for i, q in enumerate(quotes):
                        if within_tolerance(price, q.price, tol):
                            del quotes[i]
                            kept += 1
                            break
                    else:
                        if not d.refresh:
                            continue
                        cancels[o.client_id] = "out of tolerance" if wanted is not None else "refresh without a proposal"
                if d.create and quotes:
                    creates += quotes
        if d.renew:
            creates += d.renew
        backed_off = 0
        if creates and self.backoff:
            creates, backed_off = self._not_backed_off(creates, now_ns)
        cancel_first = bool(creates) and bool(cancels) and not self._affordable(creates)
        rejected = 0
        if cancel_first:
            await self._cancel_all(list(cancels), cancels)
            self._sweep()
            if not self._affordable(creates):
                # The venue has not confirmed the cancels yet (their funds are still locked):
                # create on a later tick rather than collect insufficient-balance rejects.
                self.stats["creates_deferred_for_cancels"] += len(creates)
                creates = []
            rejected = await self._create_all(creates, now_ns)
        else:
            if creates:
                rejected = await self._create_all(creates, now_ns)
            if cancels:
                await self._cancel_all(list(cancels), cancels)
        self._sweep()
        self.stats["kept"] += kept
        return _new(ActionReport, (len(creates), len(cancels), kept, rejected, backed_off, cancel_first))

    def _affordable(self, creates: list[Quote]) -> bool:
        b = self.balances.balances()
        quote_need = sum(q.price * q.size for q in creates if q.side == _BUY)
        base_need = sum(q.size for q in creates if q.side == _SELL)
        return quote_need <= b.quote_free and base_need <= b.base_free

    def _not_backed_off(self, creates: list[Quote], now_ns: int) -> tuple[list[Quote], int]:
        out = [q for q in creates if self.backoff.get((q.side, q.level), (0, 0))[0] <= now_ns]
        return out, len(creates) - len(out)

    async def _create_all(self, quotes: list[Quote], now_ns: int) -> int:
        if not quotes:
            return 0
        if len(quotes) == 1:
            return 0 if await self._create(quotes[0], now_ns) else 1
        # eager.gather, unrolled: each create runs at once; only those that had to wait are awaited.
        started = [eager.start(self._create(q, now_ns)) for q in quotes]
        if all(s.done for s in started):
            return sum(1 for s in started if not s.value())
        results = await asyncio.gather(*(s.future() for s in started))
        return sum(1 for ok in results if not ok)

    async def _create(self, q: Quote, now_ns: int) -> bool:
        cid = await self.tracker.create(self.rules.symbol, q.side, q.price, q.size)
        v = self.tracker.get(cid)
        if v is None:
            raise ExecutorStateError(f"the tracker does not know order {cid}")
        if v.state is _FAILED:
            key = (q.side, q.level)
            failures = self.backoff.get(key, (0, 0))[1] + 1
            wait = min(self.backoff_base_ns << (failures - 1), self.backoff_max_ns)
            self.backoff[key] = (now_ns + wait, failures)
            self.stats["rejected"] += 1
            return False
        if self.backoff:
            self.backoff.pop((q.side, q.level), None)
        self.placed[cid] = Placed(q, now_ns)
        self._own = None
        self.stats["created"] += 1
        self.listener.on_placed(cid, q, now_ns)
        return True

    async def _cancel_all(self, cids: list[str], reasons: dict[str, str] | str) -> None:
        placed, get, stats = self.placed, self.tracker.get, self.stats
        todo = []
        for c in cids:
            if c in placed:
                v = get(c)
                if v is None:
                    raise ExecutorStateError(f"the tracker does not know order {c}")
                if v.state is not _PENDING_CANCEL:
                    todo.append(c)
        if not todo:
            return
        for c in todo:
            why = reasons if isinstance(reasons, str) else reasons.get(c, "")
            stats["cancel: " + why] += 1
        if len(todo) == 1:
            await self.tracker.cancel(todo[0])
        else:
            started = [eager.start(self.tracker.cancel(c)) for c in todo]
            if not all(s.done for s in started):
                await asyncio.gather(*(s.future() for s in started))
            else:
                for s in started:
                    s.value()  # raise the first error, as gather would
        self.stats["cancelled"] += len(todo)

    def _view(self, cid: str) -> OrderView:
        """An order this executor placed (the tracker keeps every order it was given)."""
        v = self.tracker.get(cid)
        if v is None:
            raise ExecutorStateError(f"the tracker does not know order {cid}")
        return v

    # ------------------------------------------------------------------ news
    def on_fill(self, fill: FillEvent) -> None:
        """The tracker's fill sink calls this (through the runner's router) once per fill."""
        p = self.placed.get(fill.client_id)
        if p is None:
            return
        v = self._view(fill.client_id)
        self.stats["fills"] += 1
        self.listener.on_fill(fill.client_id, fill.side, fill.price, fill.qty, v.state == _FILLED, self.now_ns())

    def _sweep(self) -> None:
        """Forget orders that are closed; tell the controller about those that did not fill."""
        version = self.tracker.version
        if version != self._swept_at:  # an order can only close by a change in the tracker
            self._scan(version, view=False)
        elif self.status is _SHUTTING_DOWN and not self.placed:
            self.status = RunnableStatus.TERMINATED

    def _scan(self, version: int, *, view: bool) -> tuple[OwnOrder, ...]:
        """One tracker look-up per placed order, at tracker `version`: the closed ones are
        forgotten (the controller hears of those that did not fill) and, with `view`, the live
        ones returned as `OwnOrder`s (else `()`: a sweep that builds nothing nobody reads)."""
        out = []
        closed: list[tuple[str, bool]] | None = None
        get = self.tracker.get
        for cid, p in self.placed.items():
            v = get(cid)
            if v is None:
                raise ExecutorStateError(f"the tracker does not know order {cid}")
            if not v.is_live:
                if closed is None:
                    closed = []
                closed.append((cid, v.state is not _FILLED))
            elif view:
                out.append(_new(OwnOrder, (cid, p.quote.side, v.price, v.quantity, v.remaining, p.created_ns, v.state)))
        if closed is not None:
            if not view:
                self._own = None  # it held orders that are gone
            placed = self.placed
            for cid, unfilled in closed:
                del placed[cid]
                if unfilled:
                    self.listener.on_closed(cid)
        self._swept_at = version
        if self.status is _SHUTTING_DOWN and not self.placed:
            self.status = RunnableStatus.TERMINATED
        return tuple(out)


def _best_first_buy(o: OwnOrder) -> int:
    return -o.price


def _best_first_sell(o: OwnOrder) -> int:
    return o.price
