"""`ClientOrderTracker`: the shadow order ledger of one venue account.

Rules it keeps (the Hummingbot failures it exists to prevent are in the module docs of
`mixmaker.orders`):
- an order is journaled (INITIALIZED, then PENDING_CREATE) before its request leaves;
- an uncertain outcome (timeout, disconnect, 5xx) is resolved by asking the venue: the order by
  client id, then the open orders, then its trades. Only a definitive "not found" counts, and
  only `lost_after` of them in a row make an order LOST; LOST orders keep being cancelled and
  keep receiving fills, each on its own exponential backoff so they never eat the weight budget;
- an order the venue does not know, asked after its create's signed timestamp plus the venue's
  recvWindow (plus `unsent_margin_ms`), was never placed and never will be: FAILED, not LOST;
- every catch-up of trades (startup, after a stream reconnect, resolving an order) reads the
  venue's history to its end, all pages (`mixmaker.orders.trade_pages`);
- every fill is journaled once (trade id) and handed to the fill sink through an outbox, so a
  crash between the two redelivers it with the same idempotency key instead of losing it;
- one cancel per order in flight; a cancel answered "unknown order" is resolved by a query;
- after a restart nothing trades until the journal is replayed and compared with the venue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Literal, TypeVar

from mixmaker import eager
from mixmaker._core import Exposure, OrderEvent, OrderSet, OrderState, OrderView, Outcome
from mixmaker.orders.errors import (
    OrderError,
    OrderNotFoundError,
    OrderRejectedError,
    TrackerNotReadyError,
    UnknownOrderError,
    VenueUnavailableError,
)
from mixmaker.orders.ids import DEFAULT_PREFIX, generator_for
from mixmaker.orders.journal import FillEvent, JournalEvent, JournalOrder, OrderJournal
from mixmaker.orders.protocol import (
    OrderReport,
    OrderRequest,
    OrderTradesVenue,
    OrderVenue,
    Side,
    TradeReport,
    VenueStatus,
    recv_window_of,
    venue_clock_ms,
)
from mixmaker.store import Store

log = logging.getLogger("mixmaker.orders")

T = TypeVar("T")
# Events without data are immutable values: one each, not one per order (they are journaled as is).
_SUBMITTED = JournalEvent(OrderEvent.SUBMITTED)
_REJECTED = JournalEvent(OrderEvent.REJECTED)
_CANCEL_REQUESTED = JournalEvent(OrderEvent.CANCEL_REQUESTED)
# Venue statuses that are news for the state machine; open and filled come through acks and fills.
_STATUS_EVENT: dict[VenueStatus, JournalEvent] = {
    VenueStatus.CANCELED: JournalEvent(OrderEvent.CANCELED), VenueStatus.EXPIRED: JournalEvent(OrderEvent.EXPIRED),
    VenueStatus.REJECTED: _REJECTED,
}
_NEVER_ACKED = (OrderState.INITIALIZED, OrderState.FAILED)
_INITIALIZED, _FAILED, _LOST = OrderState.INITIALIZED, OrderState.FAILED, OrderState.LOST
_PENDING_CANCEL = OrderState.PENDING_CANCEL
_RESTING = (OrderState.OPEN, OrderState.PARTIALLY_FILLED)
# Trades whose order we cannot name yet (their exchange id arrives with a later ack).
_MAX_ORPHAN_TRADES = 10_000


class ClientOrderTracker:
    def __init__(
        self,
        venue: OrderVenue,
        store: Store | None,
        *,
        prefix: str = DEFAULT_PREFIX,
        lost_after: int = 3,
        unknown_orders: Literal["cancel", "adopt"] = "cancel",
        fill_sink: Callable[[FillEvent], None] | None = None,
        request_timeout: float | None = 10.0,
        inflight_timeout: float = 5.0,
        trade_lookback_ms: int = 60_000,
        startup_attempts: int = 5,
        retry_delay: float = 0.5,
        instance: str | None = None,
        crash_hook: Callable[[str, str], None] | None = None,
        order_set: Callable[[], OrderSet] = OrderSet,
        lost_retry_s: float = 1.0,
        lost_retry_max_s: float = 300.0,
        unsent_margin_ms: int = 2000,
        trade_scan_interval_s: float | None = 300.0,
        history_timeout: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        journal: OrderJournal | None = None,
    ) -> None:
        """`lost_retry_s`..`lost_retry_max_s`: the backoff between checks of one LOST order
        (doubling). `unsent_margin_ms`: past the recvWindow, how much longer before "not found"
        proves an order was never placed (clock measurement error, the venue's visibility lag).
        `trade_scan_interval_s`: how often `poll` reads the trades since the last complete scan
        (None: only at startup and on `catch_up`). `history_timeout`: the bound on reading a trade
        history to its end (many pages; each page is bounded by the venue's own timeout). `clock`: monotonic seconds (tests pass a fake).
        `journal` replaces the SQLite journal on `store` (a backtest's keeps nothing to recover);
        `request_timeout=None` waits on the venue without a timer (an in-process venue)."""
        if unknown_orders not in ("cancel", "adopt"):
            raise ValueError(f"unknown_orders must be 'cancel' or 'adopt', not {unknown_orders!r}")
        if lost_after < 1:
            raise ValueError("lost_after must be at least 1")
        if not 0 < lost_retry_s <= lost_retry_max_s:
            raise ValueError("need 0 < lost_retry_s <= lost_retry_max_s")
        if unsent_margin_ms < 0:
            raise ValueError("unsent_margin_ms must not be negative")
        self.venue = venue
        if journal is None:
            if store is None:
                raise ValueError("the tracker needs a store for its journal, or a journal")
            journal = OrderJournal(store, venue.name)
        self.journal = journal
        self.prefix = prefix
        self.lost_after = lost_after
        self.unknown_orders = unknown_orders
        self.fill_sink = fill_sink
        self.request_timeout = request_timeout
        self.inflight_timeout = inflight_timeout
        self.trade_lookback_ms = trade_lookback_ms
        self.startup_attempts = startup_attempts
        self.retry_delay = retry_delay
        self.lost_retry_s = lost_retry_s
        self.lost_retry_max_s = lost_retry_max_s
        self.unsent_margin_ms = unsent_margin_ms
        self.trade_scan_interval_s = trade_scan_interval_s
        self.history_timeout = history_timeout
        self._clock = clock
        self._instance = instance
        # Tests inject a crash (an exception that is not an Exception) at named steps.
        self._crash_hook = crash_hook
        # The state machine; the benchmark swaps in a pure-Python peer of the same table.
        self._order_set = order_set
        self.orders = order_set()
        self._meta: dict[str, JournalOrder] = {}
        self._ids = generator_for(venue.name, prefix, 0, instance)
        self._last_change: dict[str, float] = {}
        self._cancels: dict[str, asyncio.Future[OrderState]] = {}
        self._resolving: dict[str, asyncio.Future[OrderState]] = {}
        self._orphans: OrderedDict[str, list[TradeReport]] = OrderedDict()
        # LOST orders' backoff: client id -> (checks so far, next check at, on `clock`).
        self._lost_checks: dict[str, tuple[int, float]] = {}
        self._next_scan = 0.0
        self.ready = False
        # Bumped on every change to any order: readers may cache what they derived from the orders.
        self.version = 0
        self.stats: Counter[str] = Counter()
        self.anomalies: list[str] = []

    # ================================================================== startup
    async def start(self) -> None:
        """Replays the journal, redelivers undelivered fills and reconciles with the venue.
        Raises VenueUnavailableError if the venue cannot be reached after `startup_attempts`."""
        self.ready = False
        self.orders, self._meta = self.journal.rebuild(self._order_set)
        self.version += 1
        self._ids = generator_for(self.venue.name, self.prefix, self.journal.last_nonce(), self._instance)
        now = self._clock()
        self._last_change = {cid: now for cid in self.orders.live_ids()}
        self._lost_checks = {}
        self.redeliver()
        for cid in self.orders.live_ids():
            if self.orders.state(cid) == OrderState.INITIALIZED:
                # Journaled, never marked sent: the request never left.
                self._apply(cid, _REJECTED)
                self.stats["never_sent"] += 1
        reports = await self._with_retries(lambda: self.venue.fetch_open_orders(None))
        seen: set[str] = set()
        for rep in reports:
            named = self._name(rep.client_id, rep.exchange_id)
            if named is not None:
                seen.add(named)
                await self._apply_report(named, rep)
            elif rep.client_id and self._ids.is_ours(rep.client_id):
                await self._unknown_own_order(rep)
        for cid in self.orders.live_ids():
            if cid not in seen:
                await self.resolve(cid)
        # Fills that happened while we were down, for orders already closed or still open.
        for symbol in self._symbols():
            await self._scan(symbol, retries=True)
        self._next_scan = self._scan_due()
        self.ready = True
        log.info("%s: order tracker ready: %d orders known, %d live", self.venue.name, len(self.orders),
                 len(self.orders.live_ids()))

    async def _unknown_own_order(self, rep: OrderReport) -> None:
        if self.unknown_orders == "cancel":
            self.stats["unknown_cancelled"] += 1
            log.warning("%s: cancelling our unknown open order %s", self.venue.name, rep.client_id)
            try:
                await self._call(self.venue.cancel_order(rep.symbol, rep.client_id or "", rep.exchange_id))
            except (OrderNotFoundError, OrderRejectedError, VenueUnavailableError) as e:
                self._anomaly(f"cancel of unknown order {rep.client_id} failed: {e}")
            return
        cid = rep.client_id
        assert cid is not None, "only our own client ids are adopted"
        self.stats["adopted"] += 1
        side = Side.from_value(rep.side)
        self.orders.add(cid, rep.symbol, side, rep.price, rep.quantity, self.lost_after)
        o = JournalOrder(cid, rep.symbol, side, rep.price, rep.quantity, self.lost_after, time.time_ns(), True)
        first = [JournalEvent(OrderEvent.SUBMITTED)]
        self.orders.apply(cid, OrderEvent.SUBMITTED)
        self.version += 1
        self.journal.record_order(o, 0, first)
        self._meta[cid] = o
        await self._apply_report(cid, rep)

    # ================================================================== trading
    def _require_ready(self) -> None:
        if not self.ready:
            raise TrackerNotReadyError(f"{self.venue.name}: the order tracker has not finished reconciling with the venue")

    async def create(self, symbol: str, side: Side, price: int, quantity: int, *, owner: str | None = None) -> str:
        """Places a limit order; returns its client id once the outcome is known or being resolved.
        The order is journaled before the request leaves. `owner` rides on the request to the venue
        (a wrapper that attributes fills to it, as a pool's does)."""
        if not self.ready:
            self._require_ready()
        side = Side.from_value(side)  # the enum from here on, whatever the caller gave
        ids, venue, hook = self._ids, self.venue, self._crash_hook
        cid = ids.next()
        self.orders.add(cid, symbol, side, price, quantity, self.lost_after)  # validates
        self.version += 1
        # The create is signed with this venue-clock time and window, both journaled first.
        request_ms = venue_clock_ms(venue)
        o = JournalOrder(cid, symbol, side, price, quantity, self.lost_after, time.time_ns(), False,
                         request_ms, recv_window_of(venue))
        self.journal.record_order(o, ids.last)
        self._meta[cid] = o
        if hook is not None:
            hook("recorded", cid)
        self._apply(cid, _SUBMITTED)
        if hook is not None:
            hook("submitted", cid)
        try:
            rep = await self._call(venue.create_order(OrderRequest(cid, symbol, side, price, quantity, request_ms, owner)))
        except OrderRejectedError as e:
            log.info("%s: order %s rejected: %s", self.venue.name, cid, e)
            self._apply(cid, _REJECTED)
            return cid
        except VenueUnavailableError as e:
            self.stats["create_uncertain"] += 1
            log.warning("%s: create %s outcome unknown (%s): asking the venue", self.venue.name, cid, e)
            await self.resolve(cid)
            return cid
        self._step("acked", cid)
        await self._apply_report(cid, rep)
        return cid

    async def cancel(self, client_id: str) -> OrderState:
        """Cancels an order; returns its state afterwards. A second call while one is in flight
        waits for the first instead of sending another request. A LOST order is cancelled (and
        asked about) only on its own backoff: callers that retry every round (a pool releasing
        a member) would otherwise spend the venue's request weight on it without end."""
        if client_id not in self.orders:
            raise UnknownOrderError(f"no order with client id {client_id!r}")
        if client_id in self._cancels:
            self.stats["cancel_deduplicated"] += 1
        elif self._lost_state(client_id):
            if not self._lost_check_due(client_id, self._clock()):
                self.stats["lost_cancel_deferred"] += 1
                return self.orders.state(client_id)
            self.stats["lost_checks"] += 1
        return await self._once(self._cancels, client_id, self._cancel)

    async def _cancel(self, cid: str) -> OrderState:
        v = self._view(cid)
        state = v.state
        if state is _INITIALIZED:
            self._apply(cid, _REJECTED)
            return self.orders.state(cid)
        if not v.is_live:
            return state
        if state is not _PENDING_CANCEL:
            self._apply(cid, _CANCEL_REQUESTED)
        if self._crash_hook is not None:
            self._crash_hook("cancel_requested", cid)
        try:
            rep = await self._call(self.venue.cancel_order(v.symbol, cid, v.exchange_id))
        except OrderNotFoundError:
            # Already filled or cancelled, or not there yet: ask, do not retry the cancel.
            self.stats["cancel_unknown_order"] += 1
            await self.resolve(cid)
        except OrderRejectedError as e:
            log.info("%s: cancel of %s rejected: %s", self.venue.name, cid, e)
            self._apply(cid, JournalEvent(OrderEvent.CANCEL_REJECTED))
        except VenueUnavailableError:
            self.stats["cancel_uncertain"] += 1
            await self.resolve(cid)
        else:
            self._step("cancel_acked", cid)
            await self._apply_report(cid, rep)
        return self.orders.state(cid)

    def abandon(self, client_id: str) -> None:
        """Operator action: give up on a LOST order (it stops counting in exposure)."""
        v = self.orders.get(client_id)
        if v is None or v.state != OrderState.LOST:
            raise ValueError(f"only a LOST order can be abandoned; {client_id} is {v.state if v else 'unknown'}")
        # One the venue never acknowledged and that never traded ends FAILED; one it knew, or
        # that traded, ends CANCELED (a reject would contradict its history).
        never_seen = v.exchange_id is None and v.filled == 0
        self._apply(client_id, JournalEvent(OrderEvent.REJECTED if never_seen else OrderEvent.CANCELED))

    # ================================================================== venue news
    def on_trade(self, t: TradeReport) -> bool:
        """One fill from the user stream or a trade query; True if it was new."""
        return self.apply_trades([t]) == 1

    def apply_trades(self, trades: list[TradeReport]) -> int:
        """Applies a list of fills in one state-machine call and one journal commit; returns how
        many were new. Trades of orders we cannot name yet are kept until their ack arrives."""
        self._learn_exchange_ids(trades)
        batch: list[tuple[str, OrderEvent, None, str, int, int, int, str, bool]] = []
        named: list[tuple[str, TradeReport]] = []
        for t in trades:
            cid = self._name(t.client_id, t.exchange_id)
            if cid is None:
                self._keep_orphan(t)
                continue
            named.append((cid, t))
            batch.append((cid, OrderEvent.FILL, None, t.trade_id, t.price, t.qty, t.fee, t.fee_asset, t.is_maker))
        if not batch:
            return 0
        outcomes = self.orders.apply_many(batch)
        self.version += 1
        rows: list[tuple[str, JournalEvent, FillEvent]] = []
        for (cid, t), out in zip(named, outcomes, strict=True):
            if out.applied:
                ev = JournalEvent(OrderEvent.FILL, None, t.trade_id, t.price, t.qty, t.fee, t.fee_asset, t.is_maker)
                fill = FillEvent(self.venue.name, self._meta[cid].symbol, t.trade_id, cid, self._meta[cid].side,
                                 t.price, t.qty, t.fee, t.fee_asset, t.is_maker)
                rows.append((cid, ev, fill))
                self._last_change[cid] = self._clock()
                if out.after == OrderState.FILLED and (overfill := self._view(cid).overfill):
                    self._anomaly(f"order {cid} overfilled by {overfill}")
            elif out.ignored == "duplicate_fill":
                self.stats["duplicate_fills"] += 1
            elif out.error:
                self._anomaly(f"fill {t.trade_id} of {cid}: {out.message}")
        if rows:
            self.journal.append_many(rows)
            self.stats["fills"] += len(rows)
            for _cid, _ev, fill in rows:
                self._step("fill_recorded", fill.client_id)
                self._deliver(fill)
        return len(rows)

    async def on_order_update(self, rep: OrderReport) -> None:
        """An order report from the user stream or a REST answer."""
        cid = self._name(rep.client_id, rep.exchange_id)
        if cid is None:
            if rep.client_id and self._ids.is_ours(rep.client_id) and self.ready:
                await self._unknown_own_order(rep)
            return
        await self._apply_report(cid, rep)

    async def _apply_report(self, cid: str, rep: OrderReport) -> None:
        v = self._view(cid)
        state = v.state
        if rep.exchange_id and state is not _INITIALIZED and state is not _FAILED and (
                v.exchange_id is None or state is _LOST):
            self._apply(cid, JournalEvent(OrderEvent.ACCEPTED, exchange_id=rep.exchange_id))
            if self._orphans:
                self._drain_orphans(rep.exchange_id)
        elif state is _INITIALIZED:
            self._anomaly(f"venue reports order {cid} that was never sent")
            return
        if rep.filled and rep.filled > self._view(cid).filled:
            await self._fetch_fills(cid)
            if rep.filled > self._view(cid).filled:
                self.stats["fills_pending"] += 1  # the trades are not visible yet; the poll asks again
        event = _STATUS_EVENT.get(rep.status)
        if event is not None:
            self._apply(cid, event)

    async def _fetch_fills(self, cid: str) -> bool:
        try:
            trades = await self._call(self._order_trades(cid), self.history_timeout)
        except VenueUnavailableError:
            self.stats["trade_fetch_failed"] += 1
            return False
        self.apply_trades(trades)
        return True

    async def _order_trades(self, cid: str) -> list[TradeReport]:
        """Every trade that may be this order's, all pages: by its exchange id where the venue
        can, else the symbol's since the order was made (or the last complete scan, whichever is
        later: trades before that scan were applied then, if they named this order)."""
        v, meta = self._view(cid), self._meta[cid]
        since = max(meta.since_ms, self.journal.trades_scanned(meta.symbol) or 0) - self.trade_lookback_ms
        if v.exchange_id and isinstance(self.venue, OrderTradesVenue):
            return await self.venue.fetch_order_trades(meta.symbol, v.exchange_id, since)
        trades = await self.venue.fetch_my_trades(meta.symbol, since)
        return [t for t in trades if t.client_id == cid or (v.exchange_id and t.exchange_id == v.exchange_id)]

    # ================================================================== resolving doubt
    async def resolve(self, client_id: str) -> OrderState:
        """Asks the venue about one order: by client id, then open orders and recent trades.
        Only a definitive "not found" from all three counts towards LOST."""
        return await self._once(self._resolving, client_id, self._resolve)

    async def _resolve(self, cid: str) -> OrderState:
        v = self._view(cid)
        self.stats["queries"] += 1
        asked_at_ms = venue_clock_ms(self.venue)  # the answers below are from after this
        try:
            rep = await self._call(self.venue.fetch_order(v.symbol, cid))
        except VenueUnavailableError:
            self.stats["query_failed"] += 1  # no answer is not "not found"
            return v.state
        except OrderNotFoundError:
            rep = None
        if rep is None:
            try:
                opens = await self._call(self.venue.fetch_open_orders(v.symbol))
                mine = await self._call(self._order_trades(cid), self.history_timeout)
            except VenueUnavailableError:
                self.stats["query_failed"] += 1
                return v.state
            rep = next((r for r in opens if r.client_id == cid or (v.exchange_id and r.exchange_id == v.exchange_id)), None)
            if rep is None and not mine:
                if self._never_placed(cid, asked_at_ms):
                    self.stats["unsent_failed"] += 1
                    log.warning("%s: order %s is unknown to the venue past its recvWindow: it was never placed (FAILED)",
                                self.venue.name, cid)
                    self._apply(cid, _REJECTED)
                    return self.orders.state(cid)
                was_lost = self._lost(v)
                out = self._apply(cid, JournalEvent(OrderEvent.NOT_FOUND))
                if out is not None and out.after == OrderState.LOST and not was_lost:
                    log.warning("%s: order %s is LOST after %d definitive not-found answers", self.venue.name, cid, self.lost_after)
                    self.stats["lost"] += 1
                return self.orders.state(cid)
            self.apply_trades(mine)
            if rep is None:
                return self.orders.state(cid)
        await self._apply_report(cid, rep)
        return self.orders.state(cid)

    def _never_placed(self, cid: str, asked_at_ms: int) -> bool:
        """True if the venue's "not found" (asked at `asked_at_ms`, venue clock) proves the order
        was never placed: never acked, never traded, and asked after its create's signed timestamp
        plus the recvWindow it carried (plus a margin), so no copy of the request can still land."""
        v, meta = self._view(cid), self._meta[cid]
        if v.exchange_id is not None or v.filled or meta.request_ms is None or meta.recv_window_ms is None:
            return False
        return asked_at_ms > meta.request_ms + meta.recv_window_ms + self.unsent_margin_ms

    def _lost_check_due(self, cid: str, now: float) -> bool:
        """A LOST order is checked (cancelled, asked about) on its own doubling backoff, capped."""
        checks, due = self._lost_checks.get(cid, (0, now))
        if now < due:
            return False
        self._lost_checks[cid] = (checks + 1, now + min(self.lost_retry_s * 2 ** checks, self.lost_retry_max_s))
        return True

    async def poll(self) -> None:
        """One round of the background checks: orders stuck in flight are resolved; LOST
        orders are cancelled again and asked about (each on its backoff); fills not yet
        delivered are redelivered; every `trade_scan_interval_s` the trades since the last
        complete scan are read."""
        self.redeliver()
        now = self._clock()
        for cid in self.orders.live_ids():
            v = self._view(cid)
            state = v.state
            lost = self._lost(v)
            if not lost:
                self._lost_checks.pop(cid, None)
            if lost:
                await self.cancel(cid)  # on the LOST order's own backoff
            elif state in (OrderState.PENDING_CREATE, OrderState.PENDING_CANCEL) and now - self._last_change.get(cid, 0) >= self.inflight_timeout:
                await self.resolve(cid)
        if self.trade_scan_interval_s is not None and now >= self._next_scan:
            await self.catch_up()
        # Per symbol with live orders: Binance weighs openOrders 6 for one symbol and 80 for all,
        # and this runs every poll; with nothing live there is nothing to compare.
        symbols = sorted({self._view(cid).symbol for cid in self.orders.live_ids()})
        at_venue: dict[str | None, OrderReport] = {}
        for symbol in symbols:
            try:
                opens = await self._call(self.venue.fetch_open_orders(symbol))
            except VenueUnavailableError:
                self.stats["query_failed"] += 1
                return
            at_venue.update((self._name(r.client_id, r.exchange_id), r) for r in opens)
        for cid in self.orders.live_ids():
            rep = at_venue.get(cid)
            v = self._view(cid)
            if rep is not None:
                if rep.filled > v.filled or (rep.exchange_id and v.exchange_id is None):
                    await self._apply_report(cid, rep)
            elif v.state in _RESTING and now - self._last_change.get(cid, 0) >= self.inflight_timeout:
                await self.resolve(cid)  # gone from the venue's open orders: filled or cancelled unseen

    async def catch_up(self, symbols: Iterable[str] | None = None) -> bool:
        """Reads every trade since the last complete scan (less `trade_lookback_ms`), all pages,
        for each symbol we have orders in (or `symbols`), and applies them: what a stream missed
        while it was down. Returns False if a venue could not be read to the end for a symbol
        (its scan mark stays, so the next catch-up covers the same span again)."""
        done = True
        for symbol in self._symbols() if symbols is None else sorted(set(symbols)):
            try:
                await self._scan(symbol, retries=False)
            except VenueUnavailableError as e:
                done = False
                self.stats["catch_up_failed"] += 1
                log.warning("%s: trade catch-up of %s failed: %s", self.venue.name, symbol, e)
        self._next_scan = self._scan_due()
        return done

    async def _scan(self, symbol: str, *, retries: bool) -> None:
        """One complete read of `symbol`'s trades since the last scan, then its mark moves."""
        since = self._since_ms(symbol)
        if since is None:
            return  # no order of ours there, ever
        started = venue_clock_ms(self.venue)
        def fetch() -> Awaitable[list[TradeReport]]:
            return self.venue.fetch_my_trades(symbol, since)

        trades = await (self._with_retries(fetch, self.history_timeout) if retries
                        else self._call(fetch(), self.history_timeout))
        self.apply_trades(trades)
        self.journal.set_trades_scanned(symbol, started)
        self.stats["trade_scans"] += 1

    def _symbols(self) -> list[str]:
        return sorted({m.symbol for m in self._meta.values()})

    def _scan_due(self) -> float:
        return self._clock() + (self.trade_scan_interval_s or 0.0)

    # ================================================================== views
    def get(self, client_id: str) -> OrderView | None:
        return self.orders.get(client_id)

    def exposure(self, symbol: str) -> Exposure:
        """Open and in-flight quantity, including PENDING_CREATE, PENDING_CANCEL and LOST."""
        return self.orders.exposure(symbol)

    def open_orders(self) -> dict[str, OrderView]:
        """Orders the tracker believes rest on the venue (acked, not closed)."""
        views = (self._view(c) for c in self.orders.live_ids())
        return {v.client_id: v for v in views if v.state in (*_RESTING, OrderState.PENDING_CANCEL)}

    # ================================================================== internals
    def _view(self, cid: str) -> OrderView:
        """The view of an order the tracker holds (every internal caller has a known id)."""
        v = self.orders.get(cid)
        if v is None:
            raise UnknownOrderError(f"no order with client id {cid!r}")
        return v

    @staticmethod
    def _lost(v: OrderView) -> bool:
        """LOST, or a cancel in flight on a LOST order."""
        return v.state == OrderState.LOST or (v.state == OrderState.PENDING_CANCEL and v.previous == OrderState.LOST)

    def _lost_state(self, cid: str) -> bool:
        """`_lost` of a known order, reading its whole view only when a cancel is in flight."""
        state = self.orders.state(cid)
        return state is _LOST or (state is _PENDING_CANCEL and self._view(cid).previous is _LOST)

    def _apply(self, cid: str, e: JournalEvent) -> Outcome | None:
        """Applies one event to the state machine and journals it if it changed anything."""
        try:
            out = self.orders.apply(cid, e.event, e.exchange_id, e.trade_id, e.price, e.qty, e.fee, e.fee_asset, e.is_maker)
        except OrderError as err:
            self._anomaly(str(err))
            return None
        if out.applied:
            self.version += 1
            self.journal.append(cid, e)
            self._last_change[cid] = self._clock()
        return out

    @staticmethod
    async def _once(running: dict[str, asyncio.Future[OrderState]], cid: str,
                    work: Callable[[str], Coroutine[Any, Any, OrderState]]) -> OrderState:
        """One `work(cid)` in flight per order: later callers wait for the running one."""
        task = running.get(cid)
        if task is None:
            started = eager.start(work(cid))  # runs now; a task only if it has to wait
            if started.task is None:
                return started.value()
            task = running[cid] = started.task
            task.add_done_callback(lambda _t: running.pop(cid, None))
        return await asyncio.shield(task)

    def _learn_exchange_ids(self, trades: list[TradeReport]) -> None:
        """A fill proves the venue accepted the order: record its exchange id first."""
        for t in trades:
            if t.client_id and t.client_id in self.orders and t.exchange_id:
                v = self._view(t.client_id)
                if v.exchange_id is None and v.state not in _NEVER_ACKED:
                    self._apply(t.client_id, JournalEvent(OrderEvent.ACCEPTED, exchange_id=t.exchange_id))

    def _name(self, client_id: str | None, exchange_id: str | None) -> str | None:
        if client_id and client_id in self.orders:
            return client_id
        if exchange_id:
            return self.orders.client_id_of(exchange_id)
        return None

    def _keep_orphan(self, t: TradeReport) -> None:
        self._orphans.setdefault(t.exchange_id, []).append(t)
        while len(self._orphans) > _MAX_ORPHAN_TRADES:
            self._orphans.popitem(last=False)

    def _drain_orphans(self, exchange_id: str) -> None:
        kept = self._orphans.pop(exchange_id, None)
        if kept:
            self.apply_trades(kept)

    def _deliver(self, fill: FillEvent) -> None:
        if self.fill_sink is None:
            return
        try:
            self.fill_sink(fill)
        except Exception as e:  # noqa: BLE001 - the outbox keeps it; poll() redelivers
            self.stats["delivery_failed"] += 1
            log.error("%s: fill sink refused %s: %s (kept for redelivery)", self.venue.name, fill.key, e)
            return
        self.journal.mark_delivered(fill.key)

    def redeliver(self) -> int:
        pending = self.journal.undelivered_fills() if self.fill_sink is not None else []
        for fill in pending:
            self._deliver(fill)
        return len(pending)

    def _since_ms(self, symbol: str) -> int | None:
        """Where a trade scan begins (venue clock): the last completed scan (every trade before it
        was applied then), else the oldest order of the symbol; less `trade_lookback_ms` for clock
        skew. So a scan covers one downtime, not all history."""
        scanned = self.journal.trades_scanned(symbol)
        if scanned is not None:
            return scanned - self.trade_lookback_ms
        made = [m.since_ms for m in self._meta.values() if m.symbol == symbol]
        return min(made) - self.trade_lookback_ms if made else None

    async def _call(self, aw: Awaitable[T], timeout: float | None = None) -> T:
        timeout = timeout or self.request_timeout
        try:
            if timeout is None:  # what wait_for does without a timeout, minus its frame
                return await aw
            return await asyncio.wait_for(aw, timeout)
        except (TimeoutError, ConnectionError) as e:
            raise VenueUnavailableError(f"{type(e).__name__}: {e}") from e

    async def _with_retries(self, make: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        for attempt in range(1, self.startup_attempts + 1):
            try:
                return await self._call(make(), timeout)
            except VenueUnavailableError as e:
                if attempt == self.startup_attempts:
                    raise VenueUnavailableError(
                        f"{self.venue.name}: reconciliation could not reach the venue after {attempt} attempts: {e}"
                    ) from e
                await asyncio.sleep(self.retry_delay * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _anomaly(self, what: str) -> None:
        self.stats["anomalies"] += 1
        self.anomalies.append(what)
        del self.anomalies[:-100]
        log.warning("%s: %s", self.venue.name, what)

    def _step(self, step: str, cid: str) -> None:
        if self._crash_hook is not None:
            self._crash_hook(step, cid)

    def __repr__(self) -> str:
        return f"ClientOrderTracker({self.venue.name}, {len(self.orders)} orders, ready={self.ready})"
