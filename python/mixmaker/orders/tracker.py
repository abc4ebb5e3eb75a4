"""`ClientOrderTracker`: the shadow order ledger of one venue account.

Rules it keeps (the Hummingbot failures it exists to prevent are in the module docs of
`mixmaker.orders`):
- an order is journaled (INITIALIZED, then PENDING_CREATE) before its request leaves;
- an uncertain outcome (timeout, disconnect, 5xx) is resolved by asking the venue: the order by
  client id, then the open orders, then recent trades. Only a definitive "not found" counts, and
  only `lost_after` of them in a row make an order LOST; LOST orders keep being cancelled and
  keep receiving fills;
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
from typing import Awaitable, Callable, Literal, TypeVar

from mixmaker import eager
from mixmaker._core import Exposure, OrderSet, OrderView
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
from mixmaker.orders.venue import OrderReport, OrderRequest, OrderVenue, TradeReport
from mixmaker.store import Store

log = logging.getLogger("mixmaker.orders")

T = TypeVar("T")
# Venue statuses that are news for the state machine; "open"/"filled" come through acks and fills.
_STATUS_EVENT = {"canceled": "canceled", "expired": "expired", "rejected": "rejected"}
_NEVER_ACKED = ("INITIALIZED", "FAILED")
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
        journal: OrderJournal | None = None,
    ) -> None:
        """`journal` replaces the SQLite journal on `store` (a backtest's keeps nothing to
        recover); `request_timeout=None` waits on the venue without a timer (an in-process venue)."""
        if unknown_orders not in ("cancel", "adopt"):
            raise ValueError(f"unknown_orders must be 'cancel' or 'adopt', not {unknown_orders!r}")
        if lost_after < 1:
            raise ValueError("lost_after must be at least 1")
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
        self._instance = instance
        # Tests inject a crash (an exception that is not an Exception) at named steps.
        self._crash_hook = crash_hook
        # The state machine; the benchmark swaps in a pure-Python peer of the same table.
        self._order_set = order_set
        self.orders = order_set()
        self._meta: dict[str, JournalOrder] = {}
        self._ids = generator_for(venue.name, prefix, 0, instance)
        self._last_change: dict[str, float] = {}
        self._cancels: dict[str, asyncio.Future] = {}
        self._resolving: dict[str, asyncio.Future] = {}
        self._orphans: OrderedDict[str, list[TradeReport]] = OrderedDict()
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
        now = time.monotonic()
        self._last_change = {cid: now for cid in self.orders.live_ids()}
        self.redeliver()
        for cid in self.orders.live_ids():
            if self.orders.state(cid) == "INITIALIZED":
                # Journaled, never marked sent: the request never left.
                self._apply(cid, JournalEvent("rejected"))
                self.stats["never_sent"] += 1
        reports = await self._with_retries(lambda: self.venue.fetch_open_orders(None))
        seen: set[str] = set()
        for rep in reports:
            cid = self._name(rep.client_id, rep.exchange_id)
            if cid is not None:
                seen.add(cid)
                await self._apply_report(cid, rep)
            elif rep.client_id and self._ids.is_ours(rep.client_id):
                await self._unknown_own_order(rep)
        for cid in self.orders.live_ids():
            if cid not in seen:
                await self.resolve(cid)
        # Fills that happened while we were down, for orders already closed or still open.
        for symbol in sorted({self._meta[c].symbol for c in self._meta}):
            since = self._since_ms(symbol)
            if since is not None:
                scan_started = time.time_ns() // 1_000_000
                trades = await self._with_retries(lambda s=symbol, t=since: self.venue.fetch_my_trades(s, t))
                self.apply_trades(trades)
                self.journal.set_trades_scanned(symbol, scan_started)
        self.ready = True
        log.info("%s: order tracker ready: %d orders known, %d live", self.venue.name, len(self.orders),
                 len(self.orders.live_ids()))

    async def _unknown_own_order(self, rep: OrderReport) -> None:
        if self.unknown_orders == "cancel":
            self.stats["unknown_cancelled"] += 1
            log.warning("%s: cancelling our unknown open order %s", self.venue.name, rep.client_id)
            try:
                await self._call(self.venue.cancel_order(rep.symbol, rep.client_id, rep.exchange_id))
            except (OrderNotFoundError, OrderRejectedError, VenueUnavailableError) as e:
                self._anomaly(f"cancel of unknown order {rep.client_id} failed: {e}")
            return
        cid = rep.client_id
        self.stats["adopted"] += 1
        self.orders.add(cid, rep.symbol, rep.side, rep.price, rep.quantity, self.lost_after)
        o = JournalOrder(cid, rep.symbol, rep.side, rep.price, rep.quantity, self.lost_after, time.time_ns(), True)
        first = [JournalEvent("submitted")]
        self.orders.apply(cid, "submitted")
        self.version += 1
        self.journal.record_order(o, 0, first)
        self._meta[cid] = o
        await self._apply_report(cid, rep)

    # ================================================================== trading
    def _require_ready(self) -> None:
        if not self.ready:
            raise TrackerNotReadyError(f"{self.venue.name}: the order tracker has not finished reconciling with the venue")

    async def create(self, symbol: str, side: str, price: int, quantity: int) -> str:
        """Places a limit order; returns its client id once the outcome is known or being resolved.
        The order is journaled before the request leaves."""
        self._require_ready()
        cid = self._ids.next()
        self.orders.add(cid, symbol, side, price, quantity, self.lost_after)  # validates
        self.version += 1
        o = JournalOrder(cid, symbol, side, price, quantity, self.lost_after, time.time_ns(), False)
        self.journal.record_order(o, self._ids.last)
        self._meta[cid] = o
        self._step("recorded", cid)
        self._apply(cid, JournalEvent("submitted"))
        self._step("submitted", cid)
        try:
            rep = await self._call(self.venue.create_order(OrderRequest(cid, symbol, side, price, quantity)))
        except OrderRejectedError as e:
            log.info("%s: order %s rejected: %s", self.venue.name, cid, e)
            self._apply(cid, JournalEvent("rejected"))
            return cid
        except VenueUnavailableError as e:
            self.stats["create_uncertain"] += 1
            log.warning("%s: create %s outcome unknown (%s): asking the venue", self.venue.name, cid, e)
            await self.resolve(cid)
            return cid
        self._step("acked", cid)
        await self._apply_report(cid, rep)
        return cid

    async def cancel(self, client_id: str) -> str:
        """Cancels an order; returns its state afterwards. A second call while one is in flight
        waits for the first instead of sending another request."""
        if client_id not in self.orders:
            raise UnknownOrderError(f"no order with client id {client_id!r}")
        if client_id in self._cancels:
            self.stats["cancel_deduplicated"] += 1
        return await self._once(self._cancels, client_id, self._cancel)

    async def _cancel(self, cid: str) -> str:
        v = self.orders.get(cid)
        if v.state == "INITIALIZED":
            self._apply(cid, JournalEvent("rejected"))
            return self.orders.state(cid)
        if not v.is_live:
            return v.state
        if v.state != "PENDING_CANCEL":
            self._apply(cid, JournalEvent("cancel_requested"))
        self._step("cancel_requested", cid)
        try:
            rep = await self._call(self.venue.cancel_order(v.symbol, cid, v.exchange_id))
        except OrderNotFoundError:
            # Already filled or cancelled, or not there yet: ask, do not retry the cancel.
            self.stats["cancel_unknown_order"] += 1
            await self.resolve(cid)
        except OrderRejectedError as e:
            log.info("%s: cancel of %s rejected: %s", self.venue.name, cid, e)
            self._apply(cid, JournalEvent("cancel_rejected"))
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
        if v is None or v.state != "LOST":
            raise ValueError(f"only a LOST order can be abandoned; {client_id} is {v.state if v else 'unknown'}")
        # One the venue never acknowledged and that never traded ends FAILED; one it knew, or
        # that traded, ends CANCELED (a reject would contradict its history).
        never_seen = v.exchange_id is None and v.filled == 0
        self._apply(client_id, JournalEvent("rejected" if never_seen else "canceled"))

    # ================================================================== venue news
    def on_trade(self, t: TradeReport) -> bool:
        """One fill from the user stream or a trade query; True if it was new."""
        return self.apply_trades([t]) == 1

    def apply_trades(self, trades: list[TradeReport]) -> int:
        """Applies a list of fills in one state-machine call and one journal commit; returns how
        many were new. Trades of orders we cannot name yet are kept until their ack arrives."""
        self._learn_exchange_ids(trades)
        batch: list[tuple] = []
        named: list[tuple[str, TradeReport]] = []
        for t in trades:
            cid = self._name(t.client_id, t.exchange_id)
            if cid is None:
                self._keep_orphan(t)
                continue
            named.append((cid, t))
            batch.append((cid, "fill", None, t.trade_id, t.price, t.qty, t.fee, t.fee_asset, t.is_maker))
        if not batch:
            return 0
        outcomes = self.orders.apply_many(batch)
        self.version += 1
        rows: list[tuple[str, JournalEvent, FillEvent | None]] = []
        for (cid, t), out in zip(named, outcomes):
            if out.applied:
                ev = JournalEvent("fill", None, t.trade_id, t.price, t.qty, t.fee, t.fee_asset, t.is_maker)
                fill = FillEvent(self.venue.name, self._meta[cid].symbol, t.trade_id, cid, self._meta[cid].side,
                                 t.price, t.qty, t.fee, t.fee_asset, t.is_maker)
                rows.append((cid, ev, fill))
                self._last_change[cid] = time.monotonic()
                if out.after == "FILLED" and self.orders.get(cid).overfill:
                    self._anomaly(f"order {cid} overfilled by {self.orders.get(cid).overfill}")
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
        v = self.orders.get(cid)
        if rep.exchange_id and v.state not in _NEVER_ACKED and (v.exchange_id is None or v.state == "LOST"):
            self._apply(cid, JournalEvent("accepted", exchange_id=rep.exchange_id))
            self._drain_orphans(rep.exchange_id)
        elif v.state == "INITIALIZED":
            self._anomaly(f"venue reports order {cid} that was never sent")
            return
        if rep.filled > self.orders.get(cid).filled:
            await self._fetch_fills(cid)
            if rep.filled > self.orders.get(cid).filled:
                self.stats["fills_pending"] += 1  # the trades are not visible yet; the poll asks again
        event = _STATUS_EVENT.get(rep.status)
        if event is not None:
            self._apply(cid, JournalEvent(event))

    async def _fetch_fills(self, cid: str) -> bool:
        symbol = self._meta[cid].symbol
        since = self._meta[cid].created_ns // 1_000_000 - self.trade_lookback_ms
        try:
            trades = await self._call(self.venue.fetch_my_trades(symbol, since))
        except VenueUnavailableError:
            self.stats["trade_fetch_failed"] += 1
            return False
        self.apply_trades(trades)
        return True

    # ================================================================== resolving doubt
    async def resolve(self, client_id: str) -> str:
        """Asks the venue about one order: by client id, then open orders and recent trades.
        Only a definitive "not found" from all three counts towards LOST."""
        return await self._once(self._resolving, client_id, self._resolve)

    async def _resolve(self, cid: str) -> str:
        v = self.orders.get(cid)
        self.stats["queries"] += 1
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
                trades = await self._call(self.venue.fetch_my_trades(v.symbol, self._meta[cid].created_ns // 1_000_000 - self.trade_lookback_ms))
            except VenueUnavailableError:
                self.stats["query_failed"] += 1
                return v.state
            rep = next((r for r in opens if r.client_id == cid or (v.exchange_id and r.exchange_id == v.exchange_id)), None)
            mine = [t for t in trades if t.client_id == cid or (v.exchange_id and t.exchange_id == v.exchange_id)]
            if rep is None and not mine:
                was_lost = v.state == "LOST" or (v.state == "PENDING_CANCEL" and v.previous == "LOST")
                out = self._apply(cid, JournalEvent("not_found"))
                if out is not None and out.after == "LOST" and not was_lost:
                    log.warning("%s: order %s is LOST after %d definitive not-found answers", self.venue.name, cid, self.lost_after)
                    self.stats["lost"] += 1
                return self.orders.state(cid)
            self.apply_trades(mine)
            if rep is None:
                return self.orders.state(cid)
        await self._apply_report(cid, rep)
        return self.orders.state(cid)

    async def poll(self) -> None:
        """One round of the background checks: orders stuck in flight are resolved; LOST
        orders are cancelled again and asked about; fills not yet delivered are redelivered."""
        self.redeliver()
        now = time.monotonic()
        for cid in self.orders.live_ids():
            state = self.orders.state(cid)
            if state == "LOST":
                await self.cancel(cid)
            elif state in ("PENDING_CREATE", "PENDING_CANCEL") and now - self._last_change.get(cid, 0) >= self.inflight_timeout:
                await self.resolve(cid)
        try:
            opens = await self._call(self.venue.fetch_open_orders(None))
        except VenueUnavailableError:
            self.stats["query_failed"] += 1
            return
        at_venue = {self._name(r.client_id, r.exchange_id): r for r in opens}
        for cid in self.orders.live_ids():
            rep = at_venue.get(cid)
            state = self.orders.state(cid)
            if rep is not None:
                if rep.filled > self.orders.get(cid).filled or (rep.exchange_id and self.orders.get(cid).exchange_id is None):
                    await self._apply_report(cid, rep)
            elif state in ("OPEN", "PARTIALLY_FILLED") and now - self._last_change.get(cid, 0) >= self.inflight_timeout:
                await self.resolve(cid)  # gone from the venue's open orders: filled or cancelled unseen

    # ================================================================== views
    def get(self, client_id: str) -> OrderView | None:
        return self.orders.get(client_id)

    def exposure(self, symbol: str) -> Exposure:
        """Open and in-flight quantity, including PENDING_CREATE, PENDING_CANCEL and LOST."""
        return self.orders.exposure(symbol)

    def open_orders(self) -> dict[str, OrderView]:
        """Orders the tracker believes rest on the venue (acked, not closed)."""
        views = (self.orders.get(c) for c in self.orders.live_ids())
        return {v.client_id: v for v in views if v.state in ("OPEN", "PARTIALLY_FILLED", "PENDING_CANCEL")}

    # ================================================================== internals
    def _apply(self, cid: str, e: JournalEvent):
        """Applies one event to the state machine and journals it if it changed anything."""
        try:
            out = self.orders.apply(cid, e.event, e.exchange_id, e.trade_id, e.price, e.qty, e.fee, e.fee_asset, e.is_maker)
        except OrderError as err:
            self._anomaly(str(err))
            return None
        if out.applied:
            self.version += 1
            self.journal.append(cid, e)
            self._last_change[cid] = time.monotonic()
        return out

    @staticmethod
    async def _once(running: dict[str, asyncio.Future], cid: str, work: Callable[[str], Awaitable[str]]) -> str:
        """One `work(cid)` in flight per order: later callers wait for the running one."""
        task = running.get(cid)
        if task is None:
            started = eager.start(work(cid))  # runs now; a task only if it has to wait
            if started.done:
                return started.value()
            task = running[cid] = started.task
            task.add_done_callback(lambda _t: running.pop(cid, None))
        return await asyncio.shield(task)

    def _learn_exchange_ids(self, trades: list[TradeReport]) -> None:
        """A fill proves the venue accepted the order: record its exchange id first."""
        for t in trades:
            if t.client_id and t.client_id in self.orders and t.exchange_id:
                v = self.orders.get(t.client_id)
                if v.exchange_id is None and v.state not in _NEVER_ACKED:
                    self._apply(t.client_id, JournalEvent("accepted", exchange_id=t.exchange_id))

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
        """Where the startup trade scan begins: the last completed scan (every trade before it
        was applied then, or arrived on the stream since), else the oldest order of the symbol;
        less `trade_lookback_ms` for clock skew. So the scan covers one downtime, not all history."""
        scanned = self.journal.trades_scanned(symbol)
        if scanned is not None:
            return scanned - self.trade_lookback_ms
        created = [m.created_ns for m in self._meta.values() if m.symbol == symbol]
        return min(created) // 1_000_000 - self.trade_lookback_ms if created else None

    async def _call(self, aw: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(aw, self.request_timeout)
        except (asyncio.TimeoutError, ConnectionError) as e:
            raise VenueUnavailableError(f"{type(e).__name__}: {e}") from e

    async def _with_retries(self, make: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, self.startup_attempts + 1):
            try:
                return await self._call(make())
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
