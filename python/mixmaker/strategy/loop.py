"""The tick: a clock child that shows the controller a settled snapshot and hands its decision
to the executor. The same object runs on a REALTIME clock live and a BACKTEST clock in replay."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from mixmaker.clock import Clock, TimeIterator
from mixmaker.strategy.decision import Decision
from mixmaker.strategy.market import MarketSnapshot, MarketView
from mixmaker.strategy.quote_executor import QuoteExecutor
from mixmaker.strategy.single_flight import SingleFlight


class Controller(Protocol):
    """Decides from a snapshot. A controller may also say, as a class attribute
    `reads_public_trades = False`, that it never reads `snap.trades` (only
    `snap.last_trade_price`): a feed may then skip collecting them. Absent, it is taken as True."""

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
