"""Fills into the ledger, each attributed to the pool whose order filled.

- Which pool: `pool_orders` maps (venue account, client order id) -> pool id. The pool runtime
  writes the row before the order's request leaves (`record_order`), so no fill can arrive for an
  order nobody owns; a fill of an order without a row is refused (the tracker's outbox keeps it).
- One fill is one ledger transaction, key `fill:<venue account>:<symbol>:<trade id>` (the
  tracker's outbox key): the exchange account and the pool's claim in both assets (TRADE) and the
  fee (FEE_TRADING).
- Fees: the tracker keeps them in 1e-12 of the fee asset; the ledger in the asset's units. A
  fee finer than a unit is booked at its ceiling (the pool never keeps money it paid away), and
  what that over-books is kept per (exchange account, asset) in `pool_fee_remainders`; each time
  it makes a whole unit, that unit is put back on the exchange account and given to `rounding`.
  So the ledger's exchange account is always the floor of what the venue really holds.

Everything of one fill (the check that it is new, the remainder, the transaction) is written in
one store transaction, so a crash before its commit books nothing and a redelivery after it
changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mixmaker._core import ArgumentError
from mixmaker.funds.accounts import (
    ROUNDING,
    Entry,
    Flow,
    exchange,
    inflow,
    outflow,
    pool,
)
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.orders import FillEvent
from mixmaker.orders.protocol import OrderRequest, Side
from mixmaker.store import Store
from mixmaker.store.base import Transaction
from mixmaker.users.pools import PoolError

#: The tracker's fee scale (`mixmaker.connectors.ccxt_account.FEE_DECIMALS`).
TRACKER_FEE_DECIMALS = 12

MIGRATIONS = [
    """CREATE TABLE pool_orders (
        venue TEXT NOT NULL, client_id TEXT NOT NULL, pool_id TEXT NOT NULL, symbol TEXT NOT NULL,
        side TEXT NOT NULL, price BIGINT NOT NULL, quantity BIGINT NOT NULL, created_ns BIGINT NOT NULL,
        PRIMARY KEY (venue, client_id))""",
    "CREATE INDEX pool_orders_by_pool ON pool_orders (pool_id)",
    """CREATE TABLE pool_fee_remainders (
        account TEXT NOT NULL, asset TEXT NOT NULL, over BIGINT NOT NULL, PRIMARY KEY (account, asset))""",
]


@dataclass(frozen=True, slots=True)
class FillMarket:
    """One market of one exchange account, as the ledger needs it to book a fill."""

    venue_account: str
    symbol: str  # the venue's id, as the tracker journals it (BTCUSDT)
    base: str  # ledger symbols
    quote: str
    price_decimals: int
    size_decimals: int
    currencies: Mapping[str, str] = field(default_factory=dict)  # venue currency -> ledger symbol (fees)

    def ledger_symbol(self, currency: str) -> str:
        return self.currencies.get(currency, currency)


class FillBook:
    def __init__(self, store: Store, ledger: Ledger, markets: Iterable[FillMarket] = ()) -> None:
        self.store = store
        self.ledger = ledger
        self.markets: dict[tuple[str, str], FillMarket] = {}
        store.migrate("pool_fills", MIGRATIONS)
        self._owner: dict[tuple[str, str], str] = {
            (v, c): p for v, c, p in store.query("SELECT venue, client_id, pool_id FROM pool_orders")}
        for m in markets:
            self.add_market(m)

    def add_market(self, m: FillMarket) -> None:
        bd, qd = self.ledger.decimals(m.base), self.ledger.decimals(m.quote)
        if m.size_decimals > bd or m.price_decimals + m.size_decimals > qd:
            raise PoolError(
                f"{m.venue_account}:{m.symbol}: a fill would not be exact in the ledger (size {m.size_decimals} "
                f"decimals vs {m.base} {bd}; price+size {m.price_decimals + m.size_decimals} vs {m.quote} {qd})")
        self.markets[(m.venue_account, m.symbol)] = m

    # --- attribution --------------------------------------------------------------------------

    def record_order(self, venue: str, req: OrderRequest, pool_id: str) -> None:
        """Durably names the pool of an order, before its request leaves."""
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO pool_orders (venue, client_id, pool_id, symbol, side, price, quantity, created_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (venue, req.client_id, pool_id, req.symbol, req.side.value, req.price, req.quantity, time.time_ns()))
        self._owner[(venue, req.client_id)] = pool_id

    def pool_of(self, venue: str, client_id: str) -> str | None:
        return self._owner.get((venue, client_id))

    def orders_of(self, pool_id: str) -> list[str]:
        return [c for (_, c), p in self._owner.items() if p == pool_id]

    # --- booking ------------------------------------------------------------------------------

    def book(self, fill: FillEvent) -> bool:
        """Books one fill; True if it was new. Raises PoolError (the fill stays in the tracker's
        outbox) if its order belongs to no pool or its market is unknown."""
        pid = self.pool_of(fill.venue, fill.client_id)
        if pid is None:
            raise PoolError(f"fill {fill.trade_id} of {fill.venue} order {fill.client_id}: the order belongs to no pool")
        m = self.markets.get((fill.venue, fill.symbol))
        if m is None:
            raise PoolError(f"fill {fill.trade_id}: unknown market {fill.venue}:{fill.symbol}")
        key = tx_key(Cause.FILL, fill.venue, fill.symbol, fill.trade_id)
        with self.store.transaction() as tx:
            if tx.query("SELECT 1 FROM ledger_transactions WHERE tx_key = ?", (key,)):
                return False
            entries = self._entries(tx, m, pid, fill)
            self.ledger.post(tx, key, entries, ref=pid, detail={
                "client_id": fill.client_id, "side": fill.side.value, "price": fill.price, "qty": fill.qty,
                "fee": fill.fee, "fee_asset": fill.fee_asset, "maker": fill.is_maker})
        return True

    def _entries(self, tx: Transaction, m: FillMarket, pid: str, fill: FillEvent) -> list[Entry]:
        ex, claim = exchange(m.venue_account), pool(pid)
        bd, qd = self.ledger.decimals(m.base), self.ledger.decimals(m.quote)
        base_units = fill.qty * 10 ** (bd - m.size_decimals)
        quote_units = fill.price * fill.qty * 10 ** (qd - m.price_decimals - m.size_decimals)
        try:
            side = Side.from_value(fill.side)
        except ArgumentError:
            raise PoolError(f"fill {fill.trade_id}: unknown side {fill.side!r}") from None
        if side == Side.BUY:
            entries = [*inflow(Flow.TRADE, m.base, base_units, ex, claim), *outflow(Flow.TRADE, m.quote, quote_units, ex, claim)]
        else:
            entries = [*outflow(Flow.TRADE, m.base, base_units, ex, claim), *inflow(Flow.TRADE, m.quote, quote_units, ex, claim)]
        if fill.fee:
            asset = m.ledger_symbol(fill.fee_asset)
            booked, back = self._fee_units(tx, m.venue_account, asset, fill.fee)
            entries += outflow(Flow.FEE_TRADING, asset, booked, ex, claim)
            if back:
                entries += inflow(Flow.ROUNDING, asset, back, ex, ROUNDING)
        return entries

    def _fee_units(self, tx: Transaction, venue_account: str, asset: str, fee: int) -> tuple[int, int]:
        """(units booked as the fee, whole units of earlier over-booking given back), updating the
        remainder inside `tx`."""
        if fee < 0:
            raise PoolError(f"a negative trading fee ({fee}) is a rebate; not supported yet")
        shift = TRACKER_FEE_DECIMALS - self.ledger.decimals(asset)
        if shift <= 0:
            return fee * 10**-shift, 0
        unit = 10**shift
        booked = -(-fee // unit)
        acct = exchange(venue_account).name
        rows = tx.query("SELECT over FROM pool_fee_remainders WHERE account = ? AND asset = ?", (acct, asset))
        over = (rows[0][0] if rows else 0) + booked * unit - fee
        back, over = divmod(over, unit)
        tx.execute("INSERT INTO pool_fee_remainders (account, asset, over) VALUES (?, ?, ?) "
                   "ON CONFLICT (account, asset) DO UPDATE SET over = excluded.over", (acct, asset, over))
        return booked, back
