"""The tick: a clock child that shows the controller a settled snapshot and hands its decision
to the executor. The same object runs on a REALTIME clock live and a BACKTEST clock in replay."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from mixmaker.clock import Clock, TimeIterator
from mixmaker.strategy.decision import Decision
from mixmaker.strategy.errors import ExecutorStateError
from mixmaker.strategy.market import MarketSnapshot, MarketView
from mixmaker.strategy.quote_executor import QuoteExecutor
from mixmaker.strategy.single_flight import SingleFlight


class Controller(Protocol):
    """Decides from a snapshot. A controller may also say, as a class attribute
    `reads_public_trades = False`, that it never reads `snap.trades` (only
    `snap.last_trade_price`): a feed may then skip collecting them. Absent, it is taken as True.

    Optionally, `held(own_orders, cancels_in_flight, balances)` returns (until_ns, best bid,
    best ask, last trade price or None, decision) when its last decision is what it would decide
    again on those inputs at any time before `until_ns` with those best prices (and that last
    trade price, when not None); None otherwise (`PureMarketMaking.held`)."""

    def decide(self, snap: MarketSnapshot) -> Decision: ...


class TickedExecutor(Protocol):
    """Position and TWAP executors: one asynchronous step per tick."""

    def tick(self, snap: MarketSnapshot) -> Awaitable[None]: ...


class StrategyLoop(TimeIterator):
    def __init__(self, controller: Controller, executor: QuoteExecutor, market: MarketView) -> None:
        self.controller = controller
        self.executor = executor
        self.market = market
        self.last_decision: Decision | None = None
        self.decisions = 0
        self.idle_ticks = 0
        self._held = getattr(controller, "held", None)
        self._passing: tuple[Decision, int] | None = None  # what `held` vouched for: (decision, orders kept)

    def start(self, clock: Clock, now_ns: int) -> None:
        self.executor.start()

    def tick(self, now_ns: int) -> None:
        ex = self.executor
        view = ex.view()
        if view is None:
            # Still acting on the last decision: a snapshot now would show orders half-placed.
            ex.stats["ticks_skipped_busy"] += 1
            return
        snap = self.market.snapshot(now_ns, view[0], view[1])
        d = self.controller.decide(snap)
        self.last_decision = d
        self.decisions += 1
        if d.reason is not None and d.proposal is None:
            self.idle_ticks += 1
        ex.submit(d, now_ns)

    def held(self) -> tuple[int, int, int, int | None] | None:
        """(until_ns, best bid, best ask, last trade price or None) while a tick would change
        nothing: the controller would decide what it last did (a tick before `until_ns`, the book
        synced at those best prices, the last trade at that price when given) and the executor
        would keep its orders and do nothing else. A clock driver that can see the book (the
        backtest's replay) may then let such ticks pass uncalled and account them with
        `pass_ticks`. None when that cannot be said."""
        held = self._held
        if held is None:
            return None
        ex = self.executor
        view = ex.view()
        if view is None:
            return None
        h = held(view[0], view[1], self.market.balance_source.balances())
        if h is None:
            return None
        kept = ex.kept_by(h[4])
        if kept is None:
            return None
        self._passing = (h[4], kept)
        return h[0], h[1], h[2], h[3]

    def pass_ticks(self, n: int) -> None:
        """`n` ticks at which `held` stood passed uncalled: counted as if each had run."""
        passing = self._passing
        if passing is None:
            raise ExecutorStateError("pass_ticks without a held() that stood")
        d, kept = passing
        self.last_decision = d
        self.decisions += n
        if d.reason is not None and d.proposal is None:
            self.idle_ticks += n
        self.executor.stats["kept"] += n * kept


class ExecutorLoop(TimeIterator):
    """Ticks a position or TWAP executor with a fresh snapshot; one step in flight at a time."""

    def __init__(self, executor: TickedExecutor, market: MarketView) -> None:
        self.executor = executor
        self.market = market
        self.flight = SingleFlight(type(executor).__name__)

    def tick(self, now_ns: int) -> None:
        if self.flight.busy:
            self.flight.skipped += 1
            return
        snap = self.market.snapshot(now_ns)
        self.flight.start(lambda: self.executor.tick(snap))

    async def idle(self) -> None:
        await self.flight.idle()
