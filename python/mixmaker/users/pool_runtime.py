"""The pools of one exchange account, trading: one controller and one `QuoteExecutor` per pool,
over the account's ONE connector and ONE `ClientOrderTracker`.

- Attribution: every pool places orders through a `PoolOrders` facade that names the pool as the
  request's `owner`; the tracker's venue is a `PoolVenue` that writes the (client id -> pool)
  row before the request leaves, so a fill always finds its pool (`FillBook`).
- Fills: the tracker's fill outbox calls `_on_fill`: one ledger transaction per fill
  (`FillBook.book`), then the pool's executor hears of it (its controller's timers and pairs).
- Budget: a pool's executor sees `PoolBudget`, its ledger claim (less the parts of members who are
  leaving) minus what its own live orders lock, never the account's free balance.
- Self-trade guard: an order that would cross a live order of another pool on the same market is
  refused before it is sent (the tracker records it as rejected; the executor backs off that
  level) and counted; the venue's own self-trade prevention (Binance's default EXPIRE_MAKER, the
  simulator's too) stays on as the second line.
- `release(order_id)`: frees a leaving member's pro-rata part on the exchange, cancelling the
  pool's orders on the side that locks what is missing, without stopping the pool (the last
  member's release cancels everything and waits until nothing of the pool is live).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from mixmaker.clock import Clock, ClockMode
from mixmaker.connectors.binance_trades import PublicTrade, PublicTradeStream
from mixmaker.funds.assets import AssetMap
from mixmaker.orders import ClientOrderTracker, FillEvent, OrderRejectedError, OrderState, OrderView
from mixmaker.orders.protocol import (
    OrderReport,
    OrderRequest,
    OrderTradesVenue,
    OrderVenue,
    Side,
    TradeReport,
    recv_window_of,
    venue_clock_ms,
)
from mixmaker.store import Store
from mixmaker.strategy import (
    AvellanedaConfig,
    AvellanedaStoikov,
    Balances,
    MarketRules,
    MarketView,
    PMMConfig,
    PureMarketMaking,
    QuoteExecutor,
    StrategyLoop,
)
from mixmaker.users.catalog import Catalog, MarketSpec
from mixmaker.users.pool_fills import FillBook, FillMarket
from mixmaker.users.pools import PoolError, PoolLedger, mid_units

log = logging.getLogger("mixmaker.pools")

#: The pool on whose behalf the current task places an order (set by `PoolOrders.create`).

# States in which an order may still trade, so its funds stay locked.
_LIVE_LOCKING = frozenset({OrderState.INITIALIZED, OrderState.PENDING_CREATE, OrderState.OPEN,
                           OrderState.PARTIALLY_FILLED, OrderState.PENDING_CANCEL, OrderState.LOST})

StrategyConfig = PMMConfig | AvellanedaConfig


@dataclass(frozen=True, slots=True)
class PoolSetup:
    pool_id: str
    market: MarketSpec
    strategy: StrategyConfig


def setups_from_catalog(catalog: Catalog, venue_account: str) -> list[PoolSetup]:
    """The catalog's pools on one exchange account."""
    return [PoolSetup(p.pool_id, p.market, catalog.preset(p.preset).config) for p in catalog.pools
            if p.market.venue_account == venue_account]


class SelfTradeGuard:
    """Refuses an order that would cross another pool's live order on the same market."""

    def __init__(self, fills: FillBook, venue_account: str) -> None:
        self.fills = fills
        self.venue_account = venue_account
        self.tracker: ClientOrderTracker | None = None
        self.refused: Counter[str] = Counter()  # pool id -> orders refused

    def crossing(self, pool_id: str, req: OrderRequest) -> str | None:
        """The client id of another pool's live order that `req` would trade with, if any."""
        if self.tracker is None:
            return None
        for cid in self.tracker.orders.live_ids():
            owner = self.fills.pool_of(self.venue_account, cid)
            if owner is None or owner == pool_id:
                continue
            v = self.tracker.get(cid)
            if v is None or v.symbol != req.symbol or v.side == req.side:
                continue
            if (req.side == Side.BUY and req.price >= v.price) or (req.side == Side.SELL and req.price <= v.price):
                return cid
        return None

    def check(self, pool_id: str, req: OrderRequest) -> None:
        other = self.crossing(pool_id, req)
        if other is not None:
            self.refused[pool_id] += 1
            raise OrderRejectedError(
                f"self-trade guard: {pool_id}'s {req.side} at {req.price} would cross {other} of "
                f"{self.fills.pool_of(self.venue_account, other)}")


class PoolVenue:
    """The tracker's venue: the exchange's, with the pool named (and the guard asked) before a
    create leaves. Reads pass through, and so do the exchange's clock and request window
    (`RequestWindowVenue`) and its trades by order (`OrderTradesVenue`): without them the tracker
    signs creates with its own clock, cannot prove an order journaled by a killed process was
    never sent (it stays LOST, its pool member never leaves), and reads a symbol's whole trade
    history to find one order's."""

    def __init__(self, inner: OrderVenue, fills: FillBook, guard: SelfTradeGuard) -> None:
        self.inner = inner
        self.fills = fills
        self.guard = guard
        self.name = inner.name

    async def create_order(self, req: OrderRequest) -> OrderReport:
        pool_id = req.owner
        if pool_id is None:
            raise OrderRejectedError(f"order {req.client_id} placed outside any pool: refused (no owner for its fills)")
        self.guard.check(pool_id, req)
        self.fills.record_order(self.name, req, pool_id)
        return await self.inner.create_order(req)

    async def cancel_order(self, symbol: str, client_id: str, exchange_id: str | None) -> OrderReport:
        return await self.inner.cancel_order(symbol, client_id, exchange_id)

    async def fetch_order(self, symbol: str, client_id: str) -> OrderReport:
        return await self.inner.fetch_order(symbol, client_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        return await self.inner.fetch_open_orders(symbol)

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]:
        return await self.inner.fetch_my_trades(symbol, since_ms)

    async def fetch_order_trades(self, symbol: str, exchange_id: str, since_ms: int | None = None) -> list[TradeReport]:
        if isinstance(self.inner, OrderTradesVenue):
            return await self.inner.fetch_order_trades(symbol, exchange_id, since_ms)
        return [t for t in await self.inner.fetch_my_trades(symbol, since_ms) if t.exchange_id == exchange_id]

    @property
    def recv_window_ms(self) -> int | None:
        return recv_window_of(self.inner)

    def clock_ms(self) -> int:
        return venue_clock_ms(self.inner)


class PoolOrders:
    """What one pool's `QuoteExecutor` sees of the shared tracker: creates carry the pool's name."""

    def __init__(self, tracker: ClientOrderTracker, pool_id: str) -> None:
        self.tracker = tracker
        self.pool_id = pool_id

    async def create(self, symbol: str, side: Side, price: int, quantity: int) -> str:
        return await self.tracker.create(symbol, side, price, quantity, owner=self.pool_id)

    @property
    def version(self) -> int:
        """The shared tracker's change counter (the executor caches its view of orders by it)."""
        return self.tracker.version

    def get(self, client_id: str) -> OrderView | None:
        return self.tracker.get(client_id)

    async def cancel(self, client_id: str) -> OrderState:
        return await self.tracker.cancel(client_id)


class PoolBudget:
    """A pool's `BalanceSource`: its ledger claim, less leaving members' parts, less what its own
    live orders lock; in the market's size and value units (floors, never more than is there)."""

    def __init__(self, runtime: PoolRuntime, pool_id: str, rules: MarketRules, market: FillMarket) -> None:
        self.runtime = runtime
        self.pool_id = pool_id
        ledger = runtime.pools.ledger
        self.base_per_size = 10 ** (ledger.decimals(market.base) - rules.size_decimals)
        self.quote_per_value = 10 ** (ledger.decimals(market.quote) - rules.value_decimals)
        self.market = market

    def usable_units(self) -> tuple[int, int]:
        """(base, quote) ledger units the pool may trade with: its claim less leaving members'."""
        held = self.runtime.pools.holdings(self.pool_id)
        reserved = self.runtime.pools.reserved(self.pool_id)
        m = self.market
        return (held.get(m.base, 0) - reserved.get(m.base, 0), held.get(m.quote, 0) - reserved.get(m.quote, 0))

    def balances(self) -> Balances:
        base_units, quote_units = self.usable_units()
        base_total = max(0, base_units) // self.base_per_size
        quote_total = max(0, quote_units) // self.quote_per_value
        base_locked, quote_locked = self.runtime.locked(self.pool_id)
        return Balances(base_total, quote_total, max(0, base_total - base_locked), max(0, quote_total - quote_locked))


class PoolEngine:
    """One pool at work: controller, executor, the tick loop."""

    def __init__(self, runtime: PoolRuntime, setup: PoolSetup, market: FillMarket, rules: MarketRules, sync: Any) -> None:
        self.setup = setup
        self.market = market
        self.pool_id = setup.pool_id
        self.rules = rules
        self.budget = PoolBudget(runtime, setup.pool_id, rules, market)
        cfg = setup.strategy
        if isinstance(cfg, PMMConfig):
            self.controller: Any = PureMarketMaking(cfg, rules)
        elif isinstance(cfg, AvellanedaConfig):
            self.controller = AvellanedaStoikov(cfg, rules)
        else:
            raise PoolError(f"pool {setup.pool_id}: unknown strategy config {type(cfg).__name__}")
        self.orders = PoolOrders(runtime.tracker, setup.pool_id)
        self.executor = QuoteExecutor(self.orders, rules, self.budget, self.controller,
                                      now_ns=runtime.now_ns)
        self.view = MarketView(rules, sync, self.budget)
        self.loop = StrategyLoop(self.controller, self.executor, self.view)


class PoolRuntime:
    def __init__(self, connector: Any, store: Store, pools: PoolLedger, fills: FillBook, setups: Iterable[PoolSetup],
                 *, assets: AssetMap | None = None, tick_s: Decimal | str = "1", poll_s: float = 2.0,
                 **tracker_options: Any) -> None:
        """`connector`: the exchange account's `Connector` (its `venue.name` is the ledger's
        exchange account name). `assets` names the venue's currencies in the ledger (fees in a
        currency it does not list are booked under the venue's code). `tracker_options` go to
        the `ClientOrderTracker`."""
        self.connector = connector
        self.store = store
        self.pools = pools
        self.fills = fills
        self.venue_account: str = connector.venue.name
        self.setups = {s.pool_id: s for s in setups}
        for s in self.setups.values():
            if s.market.venue_account != self.venue_account:
                raise PoolError(f"pool {s.pool_id} trades on {s.market.venue_account}, not {self.venue_account}")
        self.currencies = {va.currency: spec.symbol for spec in (assets or ()) for acct, va in spec.venues.items()
                           if acct == self.venue_account}
        self.fill_markets: dict[str, FillMarket] = {}  # pool id -> its market, once the venue's are loaded
        self.guard = SelfTradeGuard(fills, self.venue_account)
        self.venue = PoolVenue(connector.venue, fills, self.guard)
        self.tracker = ClientOrderTracker(self.venue, store, fill_sink=self._on_fill, **tracker_options)
        self.guard.tracker = self.tracker
        self.engines: dict[str, PoolEngine] = {}
        self.clock = Clock(ClockMode.REALTIME, tick_size=str(tick_s))
        self.poll_s = poll_s
        self.stats: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[Any]] = []
        self._trade_streams: list[PublicTradeStream] = []

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Loads the markets, starts the books and the user stream, reconciles the tracker with
        the venue, then starts every pool's loop on the clock."""
        await self.connector.venue.load_markets()
        for s in self.setups.values():
            m = self.connector.venue.market_of_unified(s.market.symbol)
            if m is None:
                raise PoolError(f"pool {s.pool_id}: {self.venue_account} has no market {s.market.symbol}")
            if (m.price_decimals, m.size_decimals) != (s.market.price_decimals, s.market.size_decimals):
                raise PoolError(f"pool {s.pool_id}: the venue's {m.symbol} has {m.price_decimals}/{m.size_decimals} "
                                f"price/size decimals, the catalog {s.market.price_decimals}/{s.market.size_decimals}")
            fm = FillMarket(self.venue_account, m.symbol, s.market.base, s.market.quote, m.price_decimals,
                            m.size_decimals, self.currencies)
            self.fills.add_market(fm)  # before the tracker starts: it redelivers fills kept in its outbox
            self.fill_markets[s.pool_id] = fm
        symbols = sorted({fm.symbol for fm in self.fill_markets.values()})
        await self.connector.start(symbols)
        self.connector.attach(self.tracker)
        await self.tracker.start()
        # Orders a previous run left live belong to no executor now: nobody would refresh them.
        # Cancel them before trading (their fills, if any come, are still booked to their pool).
        leftovers = [v for pid in self.setups for v in self.live_orders(pid)]
        await self._cancel_all(leftovers, "restart")
        for s in self.setups.values():
            self._engine(s)
        self._start_public_trades(symbols)
        self._tasks.append(asyncio.create_task(self.clock.run(), name=f"pools {self.venue_account} clock"))
        self._tasks.append(asyncio.create_task(self._poll(), name=f"pools {self.venue_account} poll"))

    def _start_public_trades(self, symbols: list[str]) -> None:
        """Prints feed the pools' "last price" source and Avellaneda's intensity estimator, where
        the connector can give them (Binance's public trade stream)."""
        endpoints = getattr(self.connector, "endpoints", None)
        if endpoints is None:
            return
        for symbol in symbols:
            views = [e.view for e in self.engines.values() if e.rules.symbol == symbol]

            def fan_out(t: PublicTrade, views: list[MarketView] = views) -> None:
                for v in views:
                    v.on_public_trade(t.price, t.qty, t.time_ms * 1_000_000)

            stream = PublicTradeStream(self.connector.market(symbol), ws_url=endpoints.ws_market, on_trade=fan_out)
            self._trade_streams.append(stream)
            self._tasks.append(asyncio.create_task(stream.run(), name=f"trades {symbol}"))

    def _engine(self, s: PoolSetup) -> PoolEngine:
        m = self.connector.market(self.fill_markets[s.pool_id].symbol)
        rules = MarketRules(m.symbol, s.market.base, s.market.quote, m.price_decimals, m.size_decimals, m.tick, m.lot,
                            m.min_size)
        engine = self.engines[s.pool_id] = PoolEngine(self, s, self.fill_markets[s.pool_id], rules,
                                                      self.connector.syncs[m.symbol])
        self.clock.add_iterator(engine.loop)
        return engine

    async def stop(self, timeout_s: float = 10.0) -> bool:
        """Stops ticking and cancels every pool's orders, asking the venue about any still live
        (an order whose create was in doubt, a cancel unanswered) until none is or `timeout_s`
        passes. True if nothing of the pools is left live. The connector is the caller's to close."""
        self.clock.stop()
        for stream in self._trade_streams:
            stream.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(e.executor.stop() for e in self.engines.values()))
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while (live := [v for pid in self.engines for v in self.live_orders(pid)]) and loop.time() < end:
            await self._cancel_all(live, "stop")
            try:
                await self.tracker.poll()
            except Exception as e:  # noqa: BLE001 - asked again on the next round
                log.warning("%s: poll while stopping failed: %s", self.venue_account, e)
            await asyncio.sleep(0.5)  # each round asks the venue (openOrders, per symbol)
        return not live

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.tracker.poll()
            except Exception as e:  # noqa: BLE001 - one failed round is retried at the next
                self.stats["poll_failed"] += 1
                log.warning("%s: tracker poll failed: %s", self.venue_account, e)

    def now_ns(self) -> int:
        return time.time_ns()

    # --- what the pools' books need -------------------------------------------------------------

    def mid(self, pool_id: str) -> Fraction | None:
        """The pool's market mid at the synced book, in quote ledger units per base ledger unit;
        None while the book is not synced or a side is empty."""
        s = self.setups[pool_id]
        fm = self.fill_markets.get(pool_id)
        book = self.connector.book(fm.symbol) if fm is not None else None
        if book is None:
            return None
        bid, ask = book.best_bid_raw(), book.best_ask_raw()
        if bid is None or ask is None:
            return None
        ledger = self.pools.ledger
        return mid_units(bid[0] + ask[0], 2, s.market.price_decimals, ledger.decimals(s.market.base),
                         ledger.decimals(s.market.quote))

    def live_orders(self, pool_id: str) -> list[OrderView]:
        out = []
        for cid in self.tracker.orders.live_ids():
            if self.fills.pool_of(self.venue_account, cid) == pool_id:
                v = self.tracker.get(cid)
                if v is not None and v.state in _LIVE_LOCKING:
                    out.append(v)
        return out

    def locked(self, pool_id: str) -> tuple[int, int]:
        """(size units of base, value units of quote) the pool's live orders lock."""
        base = quote = 0
        for v in self.live_orders(pool_id):
            if v.side == Side.BUY:
                quote += v.price * v.remaining
            else:
                base += v.remaining
        return base, quote

    async def release(self, order_id: str) -> bool:
        """Frees a leaving member's part of the pool on the exchange; True once it is free (the
        member may be burned), False while cancels are still on their way (call again)."""
        pid = self.pools.pool_of(order_id)
        if pid is None or pid not in self.engines or not self.pools.entitlement(order_id):
            return True  # not a member here (never minted, or already burned): nothing to free
        self.pools.mark_releasing(order_id)
        engine = self.engines[pid]
        staying = [m for m in self.pools.members(pid) if m not in self.pools.releasing(pid)]
        if not staying:
            # The last member: nothing of the pool may stay on the venue, or a fill could land after the burn.
            await self._cancel_all(self.live_orders(pid), "release")
            self.tracker.redeliver()
            return not self.live_orders(pid)
        short = self._short_sides(pid, engine)
        await self._cancel_all([v for v in self.live_orders(pid) if v.side in short], "release")
        return not self._short_sides(pid, engine)

    def _short_sides(self, pid: str, engine: PoolEngine) -> list[Side]:
        """Sides whose live orders lock funds the leaving members' parts need."""
        budget = engine.budget
        held = self.pools.holdings(pid)
        reserved = self.pools.reserved(pid)
        base_locked, quote_locked = self.locked(pid)
        m = engine.market
        out: list[Side] = []
        if held.get(m.base, 0) - base_locked * budget.base_per_size < reserved.get(m.base, 0):
            out.append(Side.SELL)
        if held.get(m.quote, 0) - quote_locked * budget.quote_per_value < reserved.get(m.quote, 0):
            out.append(Side.BUY)
        return out

    async def _cancel_all(self, orders: list[OrderView], why: str) -> None:
        # PENDING_CANCEL ones too: a cancel journaled by a run that died before it left is sent
        # again (the tracker joins a cancel still in flight instead of sending a second one).
        await asyncio.gather(*(self._cancel(v.client_id, why) for v in orders))

    async def _cancel(self, client_id: str, why: str) -> None:
        self.stats[f"cancels_for_{why}"] += 1
        try:
            await self.tracker.cancel(client_id)
        except Exception as e:  # noqa: BLE001 - asked again at the next round
            log.warning("%s: cancel of %s (%s) failed: %s", self.venue_account, client_id, why, e)

    # --- fills ------------------------------------------------------------------------------------

    def _on_fill(self, fill: FillEvent) -> None:
        """The tracker's fill sink: book first (an exception keeps the fill in the outbox), then
        tell the pool's executor."""
        new = self.fills.book(fill)
        self.stats["fills_booked" if new else "fills_already_booked"] += 1
        pid = self.fills.pool_of(fill.venue, fill.client_id)
        engine = self.engines.get(pid) if pid is not None else None
        if new and engine is not None:
            engine.executor.on_fill(fill)

    def report(self) -> dict[str, Any]:
        return {"pools": {pid: e.executor.report() for pid, e in self.engines.items()},
                "self_trade_refused": dict(self.guard.refused), **dict(self.stats)}

