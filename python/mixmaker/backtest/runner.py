"""Replay a recording through the live code path against the simulated venue.

Per message, in order: time advances to the message's receive time (requests in flight reach
the venue, and the user stream is delivered to the tracker); every clock boundary up to that
time ticks (controller decides, executor acts, we wait for it); then the message updates the
book, and public trades and book moves may fill our resting orders. The BookSync, Clock
(BACKTEST mode), controller, QuoteExecutor and ClientOrderTracker are the live classes; only the
venue is simulated.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, TextIO

from mixmaker.backtest.accounting import Accounting
from mixmaker.backtest.feed import TimedFeed
from mixmaker.backtest.venue import SimVenue
from mixmaker.book import BookState, parse_decimal
from mixmaker.clock import Clock, ClockMode, tick_size_to_ns
from mixmaker.errors import MixmakerError
from mixmaker.orders import ClientOrderTracker, FillEvent, OrderReport
from mixmaker.replay import new_sync, route
from mixmaker.store import SqliteStore
from mixmaker.strategy.avellaneda import AvellanedaStoikov
from mixmaker.strategy.config import PMMConfig, RunConfig, pct_to_fraction, to_units
from mixmaker.strategy.errors import ConfigError
from mixmaker.strategy.loop import StrategyLoop
from mixmaker.strategy.market import MarketRules, MarketView
from mixmaker.strategy.pmm import PureMarketMaking
from mixmaker.strategy.quote_executor import QuoteExecutor

PROGRESS_SECONDS = 0.25


_TRADE = re.compile(rb'"p":"([0-9.]+)","q":"([0-9.]+)"')
_MAKER = re.compile(rb'"m":(true|false)')


def public_trade(raw: bytes) -> tuple[str, str, bool] | None:
    """(price, size, buyer is maker) of a Binance trade message; None for trades that are not
    market trades (insurance fund, ADL). The fields are found by pattern, with a JSON parse as
    the fallback for any other field order."""
    if b'"X":"' in raw and b'"X":"MARKET"' not in raw:
        return None
    pq, m = _TRADE.search(raw), _MAKER.search(raw)
    if pq is not None and m is not None:
        return pq[1].decode(), pq[2].decode(), m[1] == b"true"
    t = json.loads(raw)
    t = t.get("data", t)
    return t["p"], t["q"], bool(t["m"])


class BacktestError(MixmakerError, RuntimeError):
    """The backtest could not run to the end (an iterator failed, the feed does not fit the config)."""


@dataclass
class Sample:
    t_ns: int
    holdings: int  # base held, exact (size units)
    mid: float | None
    bid_quote: float | None
    ask_quote: float | None
    inventory: float
    pnl: float


class Sampler:
    """Records one point per tick, after the executor acted, for the plot and the inventory
    series (floats: analytics only, except the exact holdings)."""

    def __init__(self, runner: Backtest) -> None:
        self.r = runner
        self.samples: list[Sample] = []

    def take(self, now_ns: int) -> None:
        r = self.r
        rules = r.rules
        mark = r.mark()
        own = r.executor.own_orders()
        bids = [o.price for o in own if o.side == "buy"]
        asks = [o.price for o in own if o.side == "sell"]
        scale_p, scale_v = 10.0 ** rules.price_decimals, 10.0 ** rules.value_decimals
        self.samples.append(Sample(
            now_ns,
            r.base0 + r.accounting.position,
            float(mark) / scale_p if mark is not None else None,
            max(bids) / scale_p if bids else None,
            min(asks) / scale_p if asks else None,
            (r.base0 + r.accounting.position) / 10.0 ** rules.size_decimals,
            float(r.accounting.total(mark)) / scale_v if mark is not None else 0.0,
        ))


@dataclass
class Backtest:
    cfg: RunConfig
    feed: TimedFeed
    progress: bool = False
    progress_to: TextIO = field(default_factory=lambda: sys.stderr)
    # Builds the controller from (strategy config, rules, starting base); None: by config kind.
    controller_factory: Callable[[Any, MarketRules, int], Any] | None = None

    def __post_init__(self) -> None:
        if self.cfg.backtest is None:
            raise ConfigError("the config has no [backtest] section (balances, latency, fees)")
        m, bt = self.cfg.market, self.cfg.backtest
        self.rules = m.rules()
        spec = self.feed.recording.detect_venue()
        if (spec.price_decimals, spec.size_decimals) != (m.price_decimals, m.size_decimals):
            raise ConfigError(
                f"the feed is {spec.describe()}; [market] says price {m.price_decimals} dp, size "
                f"{m.size_decimals} dp")
        if spec.symbol and spec.symbol != m.symbol:
            raise ConfigError(f"the feed is {spec.symbol}, [market] symbol is {m.symbol}")
        self.spec = spec
        self.sync = new_sync(spec)
        self.base0 = to_units(bt.base_balance, m.size_decimals, "base_balance")
        self.quote0 = to_units(bt.quote_balance, self.rules.value_decimals, "quote_balance")
        self.venue = SimVenue(
            self.rules, base=self.base0, quote=self.quote0, latency_ns=int(bt.latency_ms * 1_000_000),
            maker_fee=pct_to_fraction(bt.maker_fee_pct, "maker_fee_pct"),
            taker_fee=pct_to_fraction(bt.taker_fee_pct, "taker_fee_pct"), queue_model=bt.queue_model,
            post_only=bt.post_only)
        self.venue.book = self.sync.book
        self.accounting = Accounting()
        self.store = SqliteStore(":memory:")
        self.tracker = ClientOrderTracker(self.venue, self.store, fill_sink=self._on_fill, retry_delay=0.0)
        self.market = MarketView(self.rules, self.sync, self.venue)
        s = self.cfg.strategy
        if self.controller_factory is not None:
            self.controller = self.controller_factory(s, self.rules, self.base0)
        elif isinstance(s, PMMConfig):
            self.controller: Any = PureMarketMaking(s, self.rules, initial_base=self.base0)
        else:
            self.controller = AvellanedaStoikov(s, self.rules)
        self.tick_ns = tick_size_to_ns(bt.tick_seconds)
        self.clock: Clock | None = None
        self.executor = QuoteExecutor(self.tracker, self.rules, self.venue, self.controller, self._now)
        self.loop = StrategyLoop(self.controller, self.executor, self.market)
        self.sampler = Sampler(self)
        self.messages = 0
        self.fill_log: list[tuple[int, FillEvent]] = []  # (venue time, fill)
        self.trades_seen = 0
        self.not_quoting: dict[str, int] = {}
        self.first_ns = self.last_ns = 0
        self.elapsed_s = 0.0

    def _now(self) -> int:
        return self.clock.current_timestamp_ns if self.clock is not None else 0

    def _on_fill(self, f: FillEvent) -> None:
        self.accounting.on_fill(f)
        self.fill_log.append((self.venue.now_ns, f))
        self.executor.on_fill(f)

    def mark(self) -> Fraction | None:
        if self.sync.state != BookState.SYNCED:
            return None
        bid, ask = self.sync.book.best_bid_raw(), self.sync.book.best_ask_raw()
        return Fraction(bid[0] + ask[0], 2) if bid and ask else None

    async def _deliver(self) -> None:
        """The user stream: fills and order updates from the venue to the tracker, in order."""
        stream = self.venue.stream
        while stream:
            batch = stream[:]
            stream.clear()
            for ev in batch:
                if isinstance(ev, OrderReport):
                    await self.tracker.on_order_update(ev)
                else:
                    self.tracker.on_trade(ev)

    async def _tick_until(self, ts: int) -> None:
        clock = self.clock
        nxt = clock.current_timestamp_ns + self.tick_ns
        while nxt <= ts:
            # The venue's time is the tick's: requests sent now travel from now.
            self.venue.advance(nxt)
            if self.venue.stream:
                await self._deliver()
            clock.backtest_til(nxt)
            if clock.iterator_errors:
                raise BacktestError(f"a clock iterator failed: {clock.last_error}")
            await self.executor.idle()
            await self._deliver()
            self.sampler.take(nxt)
            d = self.loop.last_decision
            if d is not None and d.reason is not None:
                kind = d.reason.split(":")[0]
                self.not_quoting[kind] = self.not_quoting.get(kind, 0) + 1
            nxt += self.tick_ns

    async def run_async(self) -> dict[str, Any]:
        await self.tracker.start()
        venue, sync, market = self.venue, self.sync, self.market
        pd, sd = self.rules.price_decimals, self.rules.size_decimals
        progress = _Progress(self.feed, self.progress_to) if self.progress else None
        started = time.perf_counter()
        for ts, raw in self.feed:
            if self.clock is None:
                self.first_ns = ts
                self.clock = Clock(ClockMode.BACKTEST, tick_size=self.cfg.backtest.tick_seconds,
                                   start_ns=ts - ts % self.tick_ns)
                self.clock.add_iterator(self.loop)
                self.clock.start()
            self.messages += 1
            self.last_ns = ts
            venue.advance(ts)
            if venue.stream:
                await self._deliver()
            await self._tick_until(ts)
            if b'"e":"trade"' in raw[:80]:
                trade = public_trade(raw)
                if trade is not None:
                    self.trades_seen += 1
                    price, size = parse_decimal(trade[0], pd), parse_decimal(trade[1], sd)
                    market.on_public_trade(price, size, ts)
                    venue.on_public_trade(price, size, trade[2])
            else:
                before = sync.last_update_id
                route(sync, raw)
                if sync.last_update_id != before and sync.state == BookState.SYNCED:
                    venue.on_book()
            if venue.stream:
                await self._deliver()
            if progress is not None:
                progress.update(self.messages)
        await self.executor.stop()
        venue.advance(self.last_ns + venue.latency_ns)
        await self._deliver()
        if self.clock is not None:
            self.clock.stop()
        self.elapsed_s = time.perf_counter() - started
        if progress is not None:
            progress.done()
        from mixmaker.backtest.report import build_report

        return build_report(self)

    def run(self) -> dict[str, Any]:
        return asyncio.run(self.run_async())


class _Progress:
    def __init__(self, feed: TimedFeed, out: TextIO) -> None:
        self.feed, self.out = feed, out
        self.start = self.next = time.perf_counter()

    def update(self, n: int) -> None:
        if n & 1023:
            return
        now = time.perf_counter()
        if now < self.next:
            return
        self.next = now + PROGRESS_SECONDS
        frac = self.feed.position / self.feed.size if self.feed.size else 0.0
        bar = "#" * int(frac * 30)
        self.out.write(f"\r  [{bar:<30}] {frac:6.1%}  {n:,} messages  {n / (now - self.start):,.0f} msg/s ")
        self.out.flush()

    def done(self) -> None:
        self.out.write("\r" + " " * 80 + "\r")
        self.out.flush()


@dataclass(frozen=True)
class BacktestResult:
    report: dict[str, Any]  # deterministic: the same feed and config give the same report
    timing: dict[str, float]  # wall-clock figures, which are not
    samples: list[Sample]


def run_backtest(cfg: RunConfig, feed: TimedFeed, *, progress: bool = False,
                 progress_to: TextIO | None = None,
                 controller_factory: Callable[[Any, MarketRules, int], Any] | None = None) -> BacktestResult:
    bt = Backtest(cfg, feed, progress, progress_to or sys.stderr, controller_factory)
    report = bt.run()
    timing = {"elapsed_s": bt.elapsed_s, "messages_per_s": bt.messages / bt.elapsed_s if bt.elapsed_s else 0.0}
    return BacktestResult(report, timing, bt.sampler.samples)


__all__ = ["Backtest", "BacktestError", "BacktestResult", "Sample", "run_backtest"]
