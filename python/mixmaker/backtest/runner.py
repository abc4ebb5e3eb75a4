"""Replay a recording through the live code path against the simulated venue.

The recording is a `Tape` (see `feed`); a `TapePlayer` replays it into the live `BookSync` in
Rust and hands control back only when something here has to happen:
- a line's receive time reaches the next clock boundary or a request's arrival at the venue:
  time advances to that line's time (requests in flight reach the venue, the user stream is
  delivered to the tracker), then every clock boundary up to it ticks (the controller decides,
  the executor acts), and the line is applied after;
- a public trade at or through one of our resting prices, or a book change that crosses one of
  them or shrinks the queue ahead of one: the venue fills or moves it, and the user stream is
  delivered.
A clock boundary at which the last decision stands (`StrategyLoop.held`: the controller would
decide it again, the executor would keep its orders, nothing is in flight) does not stop the
replay either: the player checks the best prices the decision was made on at each boundary, and
the ticks that passed are counted as ticked (clock, loop, executor, samples) when it stops.
Everything else (every other diff, trade and bookTicker) stays in Rust. This is exactly the
line-by-line replay, without the Python work for lines that cannot change anything we see.

The BookSync, Clock (BACKTEST mode), controller, QuoteExecutor and ClientOrderTracker are the
live classes; the venue is simulated and the tracker's journal is kept in memory. Every party is
in-process, so every coroutine finishes without waiting and runs eagerly (`mixmaker.eager`):
no tick makes a trip through the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TextIO

from mixmaker.backtest.accounting import Accounting
from mixmaker.backtest.feed import TimedFeed
from mixmaker.backtest.journal import MemoryJournal
from mixmaker.backtest.outcome import RunOutcome, Sample, TickRows
from mixmaker.backtest.report import build_report
from mixmaker.backtest.sim_venue import SimVenue
from mixmaker.book import BookState
from mixmaker.clock import Clock, ClockMode, tick_size_to_ns
from mixmaker.errors import MixmakerError
from mixmaker.orders import ClientOrderTracker, FillEvent, OrderReport, Side
from mixmaker.replay import new_sync
from mixmaker.strategy.avellaneda import AvellanedaStoikov
from mixmaker.strategy.config import PMMConfig, RunConfig, pct_to_fraction, to_units
from mixmaker.strategy.errors import ConfigError
from mixmaker.strategy.loop import StrategyLoop
from mixmaker.strategy.market import MarketRules, MarketView
from mixmaker.strategy.pmm import PureMarketMaking
from mixmaker.strategy.quote_executor import QuoteExecutor
from mixmaker.strategy.reason import reason_category

PROGRESS_SECONDS = 0.25
_NEVER = (1 << 63) - 1
_BEFORE_ALL = -(1 << 63)

_TRADE = re.compile(rb'"p":"([0-9.]+)","q":"([0-9.]+)"')
_MAKER = re.compile(rb'"m":(true|false)')


def public_trade(raw: bytes) -> tuple[str, str, bool] | None:
    """(price, size, buyer is maker) of a Binance trade message; None for trades that are not
    market trades (insurance fund, ADL). The fields are found by pattern, with a JSON parse as
    the fallback for any other field order. (The tape reads trades in Rust the same way.)"""
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
class Backtest:
    cfg: RunConfig
    feed: TimedFeed
    progress: bool = False
    progress_to: TextIO = field(default_factory=lambda: sys.stderr)
    # Builds the controller from (strategy config, rules, starting base); None: by config kind.
    controller_factory: Callable[[Any, MarketRules, int], Any] | None = None
    # Record, after each tick, what the plot draws (mid, our best quotes, PnL) besides the
    # holdings the report needs.
    samples: bool = True
    # Let ticks at which nothing would change pass in Rust (`StrategyLoop.held`): the same run,
    # without the Python of those ticks. Off only to show that it is the same run.
    pass_held: bool = True

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
        self.accounting = Accounting(self.rules.value_decimals)
        self.tracker = ClientOrderTracker(self.venue, None, journal=MemoryJournal(), fill_sink=self._on_fill,
                                          retry_delay=0.0, request_timeout=None)
        self.market = MarketView(self.rules, self.sync, self.venue)
        s = self.cfg.strategy
        self.controller: Any
        if self.controller_factory is not None:
            self.controller = self.controller_factory(s, self.rules, self.base0)
        elif isinstance(s, PMMConfig):
            self.controller = PureMarketMaking(s, self.rules, initial_base=self.base0)
        else:
            self.controller = AvellanedaStoikov(s, self.rules)
        self.tick_seconds = bt.tick_seconds
        self.tick_ns = tick_size_to_ns(bt.tick_seconds)
        self.clock: Clock | None = None
        self.executor = QuoteExecutor(self.tracker, self.rules, self.venue, self.controller, self._now)
        self.loop = StrategyLoop(self.controller, self.executor, self.market)
        self.rows = TickRows(self.rules, self.base0)
        self.messages = 0
        self.fill_log: list[tuple[int, FillEvent]] = []  # (venue time, fill)
        self.trades_seen = 0
        self.not_quoting: dict[str, int] = {}
        self.first_ns = self.last_ns = 0
        self.ticks_passed = 0  # of `ticks`, those that passed held (not run in Python)
        self.elapsed_s = 0.0
        self.player: Any = None

    def _now(self) -> int:
        now = self.clock.current_timestamp_ns if self.clock is not None else None
        return now if now is not None else 0

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
        tracker = self.tracker
        while stream:
            batch = stream[:]
            stream.clear()
            for ev in batch:
                if isinstance(ev, OrderReport):
                    await tracker.on_order_update(ev)
                else:
                    tracker.on_trade(ev)

    def _sample(self, now_ns: int) -> None:
        """One row per tick for the plot, after the executor acted (exact integers; floats only
        on demand). Without samples the run loop records (time, position) itself."""
        book = self.sync.book
        mark2 = None
        if self.sync.state == BookState.SYNCED:
            bid, ask = book.best_bid_raw(), book.best_ask_raw()
            if bid and ask:
                mark2 = bid[0] + ask[0]
        self.rows.rows.append(self._row(now_ns, mark2))

    def _count_not_quoting(self, ticks: int) -> None:
        """`ticks` ticks ended on the loop's last decision: counted by its reason, if it is one."""
        d = self.loop.last_decision
        if d is not None and d.reason is not None:
            kind = reason_category(d.reason)
            self.not_quoting[kind] = self.not_quoting.get(kind, 0) + ticks

    def _sample_passed(self, first_ns: int, n: int, step: int, mark2: int) -> None:
        """The rows of `n` ticks that passed held: a synced book at the held best prices, the
        same orders, no fill between them."""
        row = self._row(first_ns, mark2)
        self.rows.rows.extend((first_ns + k * step, *row[1:]) for k in range(n))

    def _row(self, now_ns: int, mark2: int | None) -> tuple[int, int, int | None, int | None, int | None, int, int, int]:
        qb = qa = None
        for o in self.executor.own_orders():
            if o.side == Side.BUY:
                if qb is None or o.price > qb:
                    qb = o.price
            elif qa is None or o.price < qa:
                qa = o.price
        acc = self.accounting
        return (now_ns, acc.position, mark2, qb, qa, acc.realised, acc.fees, acc._open_cost)

    async def run_async(self) -> RunOutcome:
        from mixmaker._core import TapePlayer

        await self.tracker.start()
        venue = self.venue
        started = time.perf_counter()  # reading the recording (or its tape) counts
        tape = self.feed.tape(self.spec)
        # A controller that never reads the snapshot's public trades (it declares so) is shown
        # only the last trade's price: the player does not hand every trade over to Python.
        keep_trades = bool(getattr(self.controller, "reads_public_trades", True))
        player = self.player = TapePlayer(tape, self.sync, keep_trades=keep_trades)
        END, TIME, TRADE = TapePlayer.END, TapePlayer.TIME, TapePlayer.TRADE  # else BOOK
        progress = _Progress(len(tape), self.progress_to) if self.progress else None
        ev = player.next(_BEFORE_ALL)
        if ev != END:
            ts = player.ts
            self.first_ns = ts
            self.clock = Clock(ClockMode.BACKTEST, tick_size=self.tick_seconds,
                               start_ns=ts - ts % self.tick_ns)
            self.clock.add_iterator(self.loop)
            self.clock.start()
        clock = self.clock
        seen = -1  # the venue version the player's watch and stop were taken at
        watched: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None  # the watch the player has
        next_tick = _NEVER
        due: int | None = None
        # The loop runs once per event the player stops for, and its inner loop once per tick:
        # what they call is bound to locals, and a venue with nothing in flight only has its
        # time set.
        step = self.tick_ns
        executor, loop, market = self.executor, self.loop, self.market
        take_trades, next_event = player.take_trades, player.next
        in_flight, stream = venue.in_flight, venue.stream
        rows = self.rows.rows
        sample = self._sample if self.samples else None
        # Ticks at which nothing would change pass in Rust (the player checks the held best
        # prices at each boundary); not with trades kept for the controller, which each tick
        # would hand over.
        held = loop.held if self.pass_held and not keep_trades else None
        next_held = player.next_held
        accounting = self.accounting
        if clock is not None:
            next_tick = (clock.current_timestamp_ns or 0) + step  # started: never None
        while clock is not None and ev != END:  # the clock is set when there is a first line
            if ev == TIME:
                ts = player.ts
                if in_flight:
                    venue.advance(ts)
                else:
                    venue.now_ns = ts
                if stream:
                    await self._deliver()
                # Every clock boundary up to this line's time ticks, before the line applies.
                nxt = next_tick
                while nxt <= ts:
                    # The venue's time is the tick's: requests sent now travel from now.
                    if in_flight:
                        venue.advance(nxt)
                    else:
                        venue.now_ns = nxt
                    if stream:
                        await self._deliver()
                    if keep_trades:
                        trades = take_trades()
                        if trades:
                            market.on_public_trades(trades)
                    else:
                        market.last_trade_price = player.last_trade_price
                    clock.backtest_til(nxt)
                    if clock.iterator_errors:
                        raise BacktestError(f"a clock iterator failed: {clock.last_error}")
                    if executor.busy:
                        await executor.idle()
                    if stream:
                        await self._deliver()
                    if sample is None:
                        rows.append((nxt, accounting.position))
                    else:
                        sample(nxt)
                    self._count_not_quoting(1)
                    nxt += step
                next_tick = nxt  # the clock ticked up to nxt - step (only this loop ticks it)
                if progress is not None:
                    progress.update(player.position)
            else:
                if not player.held:
                    venue.now_ns = player.ts
                if ev == TRADE:
                    price, size, maker = player.trade
                    venue.on_public_trade(price, size, maker)
                else:
                    venue.on_book()
                if stream:
                    await self._deliver()
            if venue.version != seen:
                seen = venue.version
                w = venue.watch()
                if w != watched:  # the player's watch is replaced whole: the same one changes nothing
                    watched = w
                    player.watch(*w)
                due = venue.next_deadline()
            h = held() if held is not None and not in_flight and not stream else None
            if h is None:
                ev = next_event(next_tick if due is None or due > next_tick else due)
                continue
            ev = next_held(next_tick, step, _NEVER, h[0], h[1], h[2], h[3])
            n = player.skipped
            if n:
                # n boundaries passed with the decision standing: each ticked as it would have.
                clock.backtest_pass_til(next_tick + (n - 1) * step)
                loop.pass_ticks(n)
                self.ticks_passed += n
                if sample is None:
                    pos = accounting.position
                    rows.extend((next_tick + k * step, pos) for k in range(n))
                else:
                    self._sample_passed(next_tick, n, step, h[1] + h[2])
                self._count_not_quoting(n)
                next_tick += n * step
        self.messages = player.position
        self.last_ns = tape.last_ts or 0
        trades = player.take_trades()
        if trades:
            self.market.on_public_trades(trades)
        if not keep_trades:
            self.market.last_trade_price = player.last_trade_price
        self.trades_seen = player.market_trades
        await self.executor.stop()
        venue.advance(self.last_ns + venue.latency_ns)
        await self._deliver()
        if self.clock is not None:
            self.clock.stop()
        self.elapsed_s = time.perf_counter() - started
        if progress is not None:
            progress.done()
        return self.outcome()

    def outcome(self) -> RunOutcome:
        venue, tracker = self.venue, self.tracker
        return RunOutcome(
            feed_name=self.feed.path.name, venue=self.spec.describe(), strategy=self.cfg.strategy.kind,
            rules=self.rules, first_ns=self.first_ns, last_ns=self.last_ns, messages=self.messages,
            public_trades=self.trades_seen, ticks=self.clock.ticks if self.clock is not None else 0,
            book_state=self.sync.state.name, diffs_applied=self.sync.stats.applied, gaps=self.sync.stats.gaps,
            mark=self.mark(), accounting=self.accounting, base0=self.base0, quote0=self.quote0,
            base_end=venue.base, quote_end=venue.quote,
            quoted_qty=sum(o.quantity for o in venue.orders.values()),
            executor_stats=Counter(self.executor.stats), executor_report=self.executor.report(),
            venue_stats=dict(venue.stats), not_quoting=dict(self.not_quoting), ticks_rows=self.rows,
            fill_log=list(self.fill_log), anomalies=tracker.stats["anomalies"],
            late_fills=tracker.orders.late_fills(),
        )

    def run(self) -> RunOutcome:
        """Run to the end on a fresh event loop. Not `asyncio.run`: it swaps the SIGINT handler
        in and out, and putting Python's back formats the repr of the handler's task, which
        reprs this whole run (milliseconds, every run).

        The cyclic garbage collector is paused meanwhile: a replay allocates objects by the
        hundred thousand, every one freed by its reference count (a run leaves no cycles behind
        but its own object graph, freed when it is dropped), and each collection it would
        trigger walks every object the process holds (a notebook's data, the peers of a bench)."""
        loop = asyncio.new_event_loop()
        try:
            with gc_paused():
                return loop.run_until_complete(self.run_async())
        finally:
            loop.close()


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off meanwhile (and back on after only if it was on: nests).

    What the run made and kept until then (its tracker, venue, rows: tens of thousands of
    objects, alive until the caller drops the result) is handed to the oldest generation on
    the way out (`freeze` then `unfreeze` moves every tracked object there). Otherwise the first
    allocation after `enable` walks them all as young objects, and again as they are promoted:
    work for nothing, since they live as long as the run's result and are freed by reference
    counting. They stay collectable: the next full collection sees them like any old object.
    Not when the caller has frozen objects of its own: `unfreeze` would hand those back too."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


class _Progress:
    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.start = self.next = time.perf_counter()

    def update(self, n: int) -> None:
        now = time.perf_counter()
        if now < self.next:
            return
        self.next = now + PROGRESS_SECONDS
        frac = n / self.total if self.total else 0.0
        bar = "#" * int(frac * 30)
        self.out.write(f"\r  [{bar:<30}] {frac:6.1%}  {n:,} messages  {n / max(now - self.start, 1e-9):,.0f} msg/s ")
        self.out.flush()

    def done(self) -> None:
        self.out.write("\r" + " " * 80 + "\r")
        self.out.flush()


@dataclass(frozen=True)
class BacktestResult:
    report: dict[str, Any]  # deterministic: the same feed and config give the same report
    timing: dict[str, float]  # wall-clock figures, which are not
    rows: TickRows = field(repr=False)

    @property
    def samples(self) -> list[Sample]:
        """One point per tick (mid, our best quotes, inventory, PnL) for the plot."""
        return self.rows.samples()


def run_backtest(cfg: RunConfig, feed: TimedFeed, *, progress: bool = False,
                 progress_to: TextIO | None = None,
                 controller_factory: Callable[[Any, MarketRules, int], Any] | None = None,
                 samples: bool = True) -> BacktestResult:
    """Run one backtest. `samples=False` records only what the report needs (no plot series)."""
    bt = Backtest(cfg, feed, progress, progress_to or sys.stderr, controller_factory, samples)
    # The report too: its thousands of rows would otherwise set off collections that walk
    # every object the run left and the process holds.
    with gc_paused():
        report = build_report(bt.run())
    timing = {"elapsed_s": bt.elapsed_s, "messages_per_s": bt.messages / bt.elapsed_s if bt.elapsed_s else 0.0}
    return BacktestResult(report, timing, bt.rows)


__all__ = ["Backtest", "BacktestError", "BacktestResult", "Sample", "run_backtest"]
