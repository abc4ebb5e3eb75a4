"""User orders: one user's stake in one pool, as an explicit state machine.

    AWAITING_FUNDS -> FUNDED -> ALLOCATING -> ACTIVE -> STOPPING -> SETTLING -> PAYING -> SETTLED
    AWAITING_FUNDS | FUNDED -> REFUNDING -> REFUNDED          (timeout, or a stop before allocation)
    any live state -> FAILED                                  (Mixin refused a payment for good, ...)

Every (state, event) pair is decided in ONE place, the grid `_GRID` below, with no default: a
state or an event added without a decision for every pair fails at import. A cell is the next
state, `=` (accepted, the state stays) or `-` (refused: a user's PAYMENT or STOP is then refunded;
for the worker's own events it is a bug).

Each transition is durable: the order row and a `user_order_events` row are written in the
caller's store transaction, together with the money the transition depends on (the ledger
posting, the queued payouts). An event carries a `cause` (a snapshot id, an allocation key...):
firing the same (event, cause) again changes nothing, so every step may be repeated after a crash.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, replace
from typing import Any

from mixmaker.store import Store
from mixmaker.store.base import Row, Transaction
from mixmaker.users.errors import IllegalTransitionError, UserError


class OrderState(enum.Enum):
    AWAITING_FUNDS = "awaiting_funds"  # created by its first payment; more may come
    FUNDED = "funded"  # what arrived reaches what the memo expects
    ALLOCATING = "allocating"  # funds on their way to the pool's exchange account
    ACTIVE = "active"  # shares minted: the order is a member of its pool
    STOPPING = "stopping"  # freeing its part of the pool, then burning its shares
    SETTLING = "settling"  # its funds on their way back to Mixin
    PAYING = "paying"  # payouts queued to the payer
    SETTLED = "settled"  # paid out
    REFUNDING = "refunding"  # returning what arrived, as it arrived (timeout, early stop)
    REFUNDED = "refunded"
    FAILED = "failed"  # stopped for an operator: the money stays in the ledger under the order

    @property
    def terminal(self) -> bool:
        return self in (OrderState.SETTLED, OrderState.REFUNDED, OrderState.FAILED)


class OrderEvent(enum.Enum):
    PAYMENT = "payment"  # a valid payment for this order was credited (create again, add)
    FUNDING_COMPLETE = "funding_complete"
    TIMEOUT = "timeout"  # the funding deadline passed
    STOP = "stop"  # the payer asked to stop (or the worker, after a deferred stop / a failed top-up)
    ALLOCATE = "allocate"  # the worker starts moving a tranche of funds to the exchange
    ALLOCATED = "allocated"  # the tranche is credited on the exchange
    ALLOCATION_FAILED = "allocation_failed"  # the move failed for good; the funds are back on Mixin
    MINTED = "minted"  # the tranche's shares are minted
    RELEASED = "released"  # the order's part is free on the exchange
    BURNED = "burned"  # its shares are burned, its entitlement credited to the order
    RETURNED = "returned"  # its funds are back on Mixin
    RETURN_FAILED = "return_failed"
    PAID = "paid"  # every payout is sent
    REFUND_SENT = "refund_sent"  # every return is sent
    ERROR = "error"  # Mixin refused a payment for good


_S = OrderState
_E = OrderEvent
_ABBR = {
    "AWAIT": _S.AWAITING_FUNDS, "FUNDED": _S.FUNDED, "ALLOC": _S.ALLOCATING, "ACTIVE": _S.ACTIVE,
    "STOPG": _S.STOPPING, "SETTLG": _S.SETTLING, "PAYING": _S.PAYING, "SETTLD": _S.SETTLED,
    "REFNDG": _S.REFUNDING, "REFNDD": _S.REFUNDED, "FAILED": _S.FAILED,
}
_COLUMNS = [_E.PAYMENT, _E.FUNDING_COMPLETE, _E.TIMEOUT, _E.STOP, _E.ALLOCATE, _E.ALLOCATED, _E.ALLOCATION_FAILED,
            _E.MINTED, _E.RELEASED, _E.BURNED, _E.RETURNED, _E.RETURN_FAILED, _E.PAID, _E.REFUND_SENT, _E.ERROR]

# Columns, in order: PAYMENT FUNDING_COMPLETE TIMEOUT STOP ALLOCATE ALLOCATED ALLOCATION_FAILED MINTED
# RELEASED BURNED RETURNED RETURN_FAILED PAID REFUND_SENT ERROR.
# STOP while ALLOCATING is accepted and deferred: the order stops as soon as its shares exist.
# A failed allocation goes to STOPPING: with no shares the stop pays back what is in the claim.
_GRID = """
         PAYMT  FUNDOK TIMEOUT STOP   ALLOC  ALLOCD ALLOCX MINTED RELSD  BURNED RETRND RETRNX PAID   REFSNT ERROR
AWAIT    =      FUNDED REFNDG  REFNDG -      -      -      -      -      -      -      -      -      -      FAILED
FUNDED   =      -      -       REFNDG ALLOC  -      -      -      -      -      -      -      -      -      FAILED
ALLOC    =      -      -       =      -      =      STOPG  ACTIVE -      -      -      -      -      -      FAILED
ACTIVE   =      -      -       STOPG  ALLOC  -      -      -      -      -      -      -      -      -      FAILED
STOPG    -      -      -       -      -      -      -      -      =      SETTLG -      -      -      -      FAILED
SETTLG   -      -      -       -      -      -      -      -      -      -      PAYING FAILED -      -      FAILED
PAYING   -      -      -       -      -      -      -      -      -      -      -      -      SETTLD -      FAILED
SETTLD   -      -      -       -      -      -      -      -      -      -      -      -      -      -      -
REFNDG   -      -      -       -      -      -      -      -      -      -      -      -      -      REFNDD FAILED
REFNDD   -      -      -       -      -      -      -      -      -      -      -      -      -      -      -
FAILED   -      -      -       -      -      -      -      -      -      -      -      -      -      -      -
"""

STAY = "="


def _parse_grid(text: str) -> dict[tuple[OrderState, OrderEvent], OrderState | None]:
    rows = [line.split() for line in text.strip().splitlines()]
    header, body = rows[0], rows[1:]
    if len(header) != len(_COLUMNS):
        raise AssertionError(f"the order grid has {len(header)} columns for {len(_COLUMNS)} events")
    table: dict[tuple[OrderState, OrderEvent], OrderState | None] = {}
    for row in body:
        state = _ABBR[row[0]]
        if len(row) != len(_COLUMNS) + 1:
            raise AssertionError(f"order grid row {row[0]} has {len(row) - 1} cells, not {len(_COLUMNS)}")
        for event, cell in zip(_COLUMNS, row[1:], strict=True):
            table[(state, event)] = state if cell == STAY else None if cell == "-" else _ABBR[cell]
    missing = {(s, e) for s in OrderState for e in OrderEvent} - set(table)
    if missing or set(_COLUMNS) != set(OrderEvent) or set(_ABBR.values()) != set(OrderState):
        raise AssertionError(f"the order grid does not decide {sorted((s.name, e.name) for s, e in missing)}")
    return table


_TABLE = _parse_grid(_GRID)


def decide(state: OrderState, event: OrderEvent) -> OrderState | None:
    """The state after `event` in `state`, or None when the state refuses the event."""
    return _TABLE[(state, event)]


def accepts(state: OrderState, event: OrderEvent) -> bool:
    return decide(state, event) is not None


# --- the durable orders ---------------------------------------------------------------------

MIGRATIONS = [
    """CREATE TABLE user_orders (
        order_id TEXT PRIMARY KEY, payer TEXT NOT NULL, pool_id TEXT NOT NULL, market TEXT NOT NULL,
        preset TEXT NOT NULL, base TEXT NOT NULL, quote TEXT NOT NULL,
        expect_base BIGINT NOT NULL, expect_quote BIGINT NOT NULL, state TEXT NOT NULL,
        tranche INTEGER NOT NULL, stop_requested INTEGER NOT NULL, deadline_ns BIGINT NOT NULL,
        created_ns BIGINT NOT NULL, updated_ns BIGINT NOT NULL, seq INTEGER NOT NULL)""",
    "CREATE INDEX user_orders_by_state ON user_orders (state)",
    "CREATE INDEX user_orders_by_payer ON user_orders (payer)",
    """CREATE TABLE user_order_events (
        order_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, cause TEXT NOT NULL,
        from_state TEXT NOT NULL, to_state TEXT NOT NULL, at_ns BIGINT NOT NULL, detail TEXT NOT NULL,
        PRIMARY KEY (order_id, seq), UNIQUE (order_id, event, cause))""",
    """CREATE TABLE user_order_payments (
        snapshot_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, action TEXT NOT NULL, asset TEXT NOT NULL,
        units BIGINT NOT NULL, at_ns BIGINT NOT NULL)""",
    "CREATE INDEX user_order_payments_by_order ON user_order_payments (order_id)",
    # One row per tranche of funds sent to the exchange: the amounts are fixed when the tranche
    # starts, so a repeat after a crash sends the very same amounts under the same key.
    """CREATE TABLE user_order_tranches (
        order_id TEXT NOT NULL, tranche INTEGER NOT NULL, amounts TEXT NOT NULL, state TEXT NOT NULL,
        shares TEXT NOT NULL, PRIMARY KEY (order_id, tranche))""",
    # What the burn credited to the order, to bring back from the exchange.
    "CREATE TABLE user_order_returns (order_id TEXT PRIMARY KEY, amounts TEXT NOT NULL)",
]

LIVE_STATES = tuple(s.value for s in OrderState if s not in (OrderState.SETTLED, OrderState.REFUNDED))


class TrancheState(enum.Enum):
    SENDING = "sending"  # the allocator was asked to move it
    ARRIVED = "arrived"  # credited on the exchange, shares not minted yet
    MINTED = "minted"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class UserOrder:
    order_id: str
    payer: str
    pool_id: str
    market: str
    preset: str
    base: str
    quote: str
    expect_base: int  # ledger units
    expect_quote: int
    state: OrderState
    tranche: int  # the current (or last) tranche sent to the exchange; -1 before the first
    stop_requested: bool
    deadline_ns: int
    created_ns: int
    updated_ns: int
    seq: int

    @property
    def assets(self) -> tuple[str, str]:
        return (self.base, self.quote)

    def expected(self, asset: str) -> int:
        return self.expect_base if asset == self.base else self.expect_quote if asset == self.quote else 0


_ORDER_COLUMNS = ("order_id, payer, pool_id, market, preset, base, quote, expect_base, expect_quote, state, tranche, "
                  "stop_requested, deadline_ns, created_ns, updated_ns, seq")


def _order(row: Row) -> UserOrder:
    r = list(row)
    r[9] = OrderState(r[9])
    r[11] = bool(r[11])
    return UserOrder(*r)


@dataclass(frozen=True, slots=True)
class Fired:
    order: UserOrder  # after the event
    changed: bool  # False when this (event, cause) had already been applied


class OrderBook:
    """The durable user orders. Every write takes the caller's store transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate("user_orders", MIGRATIONS)

    # --- reading ----------------------------------------------------------------------------

    def get(self, q: Transaction | Store, order_id: str) -> UserOrder | None:
        rows = q.query(f"SELECT {_ORDER_COLUMNS} FROM user_orders WHERE order_id = ?", (order_id,))
        return _order(rows[0]) if rows else None

    def order(self, order_id: str) -> UserOrder:
        o = self.get(self.store, order_id)
        if o is None:
            raise UserError(f"no user order {order_id}")
        return o

    def in_states(self, *states: OrderState) -> list[UserOrder]:
        marks = ", ".join("?" for _ in states)
        rows = self.store.query(f"SELECT {_ORDER_COLUMNS} FROM user_orders WHERE state IN ({marks}) "
                                "ORDER BY created_ns, order_id", tuple(s.value for s in states))
        return [_order(r) for r in rows]

    def all(self) -> list[UserOrder]:
        return [_order(r) for r in self.store.query(f"SELECT {_ORDER_COLUMNS} FROM user_orders "
                                                     "ORDER BY created_ns, order_id")]

    def events(self, order_id: str) -> list[tuple[str, str, str, str]]:
        """(event, cause, from state, to state), in order."""
        return [(str(e), str(c), str(a), str(b)) for e, c, a, b in self.store.query(
            "SELECT event, cause, from_state, to_state FROM user_order_events WHERE order_id = ? ORDER BY seq",
            (order_id,))]

    def paid(self, q: Transaction | Store, order_id: str) -> dict[str, int]:
        """What the order's payer paid into it, per asset."""
        rows = q.query("SELECT asset, SUM(units) FROM user_order_payments WHERE order_id = ? GROUP BY asset",
                       (order_id,))
        return {a: int(u) for a, u in rows}

    def payments(self, order_id: str) -> list[tuple[str, str, str, int]]:
        """(snapshot id, action, asset, units) of every payment credited to the order."""
        return [(str(s), str(a), str(asset), int(u)) for s, a, asset, u in self.store.query(
            "SELECT snapshot_id, action, asset, units FROM user_order_payments WHERE order_id = ? "
            "ORDER BY at_ns, snapshot_id", (order_id,))]

    def live_paid_by(self, tx: Transaction, payer: str, asset: str) -> int:
        """What one payer has paid in `asset` into orders that are not settled or refunded."""
        marks = ", ".join("?" for _ in LIVE_STATES)
        rows = tx.query(f"SELECT SUM(p.units) FROM user_order_payments p JOIN user_orders o ON o.order_id = p.order_id "
                        f"WHERE o.payer = ? AND p.asset = ? AND o.state IN ({marks})", (payer, asset, *LIVE_STATES))
        return int(rows[0][0] or 0)

    # --- writing ----------------------------------------------------------------------------

    def create(self, tx: Transaction, *, order_id: str, payer: str, pool_id: str, market: str, preset: str,
               base: str, quote: str, expect_base: int, expect_quote: int, deadline_ns: int, cause: str) -> UserOrder:
        now = time.time_ns()
        tx.execute(f"INSERT INTO user_orders ({_ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (order_id, payer, pool_id, market, preset, base, quote, expect_base, expect_quote,
                    OrderState.AWAITING_FUNDS.value, -1, 0, deadline_ns, now, now, 1))
        tx.execute("INSERT INTO user_order_events (order_id, seq, event, cause, from_state, to_state, at_ns, detail) "
                   "VALUES (?, 1, 'created', ?, '', ?, ?, '{}')", (order_id, cause, OrderState.AWAITING_FUNDS.value, now))
        o = self.get(tx, order_id)
        assert o is not None
        return o

    def record_payment(self, tx: Transaction, order_id: str, snapshot_id: str, action: str, asset: str,
                       units: int, at_ns: int) -> None:
        tx.execute("INSERT INTO user_order_payments (snapshot_id, order_id, action, asset, units, at_ns) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (snapshot_id, order_id, action, asset, units, at_ns))

    def fire(self, tx: Transaction, order_id: str, event: OrderEvent, cause: str, *,
             expect: OrderState | None = None, detail: dict[str, object] | None = None, **fields: object) -> Fired:
        """Applies `event` (caused by `cause`) to the order, durably, in `tx`. `fields` (tranche,
        stop_requested) are written with it. Raises `IllegalTransitionError` if the state refuses
        the event; does nothing if this (event, cause) was applied before, or if `expect` is given
        and the order is no longer in that state (another writer moved it first)."""
        o = self.get(tx, order_id)
        if o is None:
            raise UserError(f"no user order {order_id}")
        if expect is not None and o.state is not expect:
            return Fired(o, False)
        seen = tx.query("SELECT 1 FROM user_order_events WHERE order_id = ? AND event = ? AND cause = ?",
                        (order_id, event.value, cause))
        if seen:
            return Fired(o, False)
        nxt = decide(o.state, event)
        if nxt is None:
            raise IllegalTransitionError(f"user order {order_id} is {o.state.value}: it does not accept {event.value} "
                                         f"({cause})")
        now = time.time_ns()
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
        n = tx.execute(f"UPDATE user_orders SET state = ?, seq = seq + 1, updated_ns = ?{', ' + sets if sets else ''} "
                       "WHERE order_id = ? AND seq = ?", (nxt.value, now, *values, order_id, o.seq))
        if n != 1:
            raise UserError(f"user order {order_id} changed under us (seq {o.seq})")
        tx.execute("INSERT INTO user_order_events (order_id, seq, event, cause, from_state, to_state, at_ns, detail) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (order_id, o.seq + 1, event.value, cause, o.state.value, nxt.value,
                                                       now, json.dumps(detail or {}, sort_keys=True, default=str)))
        # UserOrder's own fields, of their own types (the UPDATE above took the same names)
        changed: dict[str, Any] = {k: bool(v) if k == "stop_requested" else v for k, v in fields.items()}
        return Fired(replace(o, state=nxt, seq=o.seq + 1, updated_ns=now, **changed), True)

    # --- tranches and returns ---------------------------------------------------------------

    def tranche(self, q: Transaction | Store, order_id: str, n: int) -> tuple[dict[str, int], TrancheState, int] | None:
        rows = q.query("SELECT amounts, state, shares FROM user_order_tranches WHERE order_id = ? AND tranche = ?",
                       (order_id, n))
        if not rows:
            return None
        return json.loads(rows[0][0]), TrancheState(rows[0][1]), int(rows[0][2])

    def start_tranche(self, tx: Transaction, order_id: str, n: int, amounts: dict[str, int]) -> None:
        tx.execute("INSERT INTO user_order_tranches (order_id, tranche, amounts, state, shares) VALUES (?, ?, ?, ?, '0') "
                   "ON CONFLICT DO NOTHING", (order_id, n, json.dumps(amounts, sort_keys=True), TrancheState.SENDING.value))

    def set_tranche(self, tx: Transaction, order_id: str, n: int, state: TrancheState, shares: int = 0) -> None:
        # shares as text: share counts may pass 2**63 (they are scaled far beyond money units)
        tx.execute("UPDATE user_order_tranches SET state = ?, shares = ? WHERE order_id = ? AND tranche = ?",
                   (state.value, str(shares), order_id, n))

    def set_returns(self, tx: Transaction, order_id: str, amounts: dict[str, int]) -> None:
        tx.execute("INSERT INTO user_order_returns (order_id, amounts) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   (order_id, json.dumps(amounts, sort_keys=True)))

    def returns(self, order_id: str) -> dict[str, int] | None:
        rows = self.store.query("SELECT amounts FROM user_order_returns WHERE order_id = ?", (order_id,))
        return json.loads(rows[0][0]) if rows else None

    def counts_by_state(self) -> dict[OrderState, int]:
        return {OrderState(s): n for s, n in self.store.query("SELECT state, COUNT(*) FROM user_orders GROUP BY state")}
