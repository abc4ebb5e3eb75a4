"""Refunds and payouts: a durable outbox, and the worker that pays it through `Payments`.

Whoever decides that money goes back (intake for a refused payment, the lifecycle worker for a
timed-out, early-stopped or settled order) QUEUES it here in its own store transaction, together
with the decision. The worker then sends each row with `Payments.transfer(cause=payout id)` —
the cause is derived from the snapshot id or the user order id, so Mixin's request id is too and a
repeat after a crash never pays twice — and books REFUND or PAYOUT in the ledger, in one store
transaction with the row's SENT, only once Mixin has the payment. A payment is only ever sent to
the snapshot's payer (the `opponent_id` that paid), never to an address taken from a memo.

Amounts below the asset's dust threshold (or below Mixin's 1e-8 when the ledger is finer) are not
sent: they move to `unclaimed:dust` in the ledger and the row says DUST.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Account, Flow
from mixmaker.funds.assets import AssetMap
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.mixin.errors import MixinError
from mixmaker.mixin.payments import PaymentConflictError, PaymentFailedError, Payments, PaymentState
from mixmaker.mixin.utxo import InsufficientOutputsError
from mixmaker.money import MIXIN_DECIMALS, format_units
from mixmaker.store import Store
from mixmaker.store.base import Row, Transaction
from mixmaker.store.lease import LeaseError
from mixmaker.users.alerts import AlertKind, alert
from mixmaker.users.catalog import Limits
from mixmaker.users.orders import OrderBook, OrderEvent, OrderState

log = logging.getLogger("mixmaker.users.payouts")

DUST = acc.unclaimed("dust")

MIGRATIONS = [
    """CREATE TABLE user_payouts (
        payout_id TEXT PRIMARY KEY, kind TEXT NOT NULL, order_id TEXT NOT NULL, snapshot_id TEXT NOT NULL,
        account TEXT NOT NULL, asset TEXT NOT NULL, mixin_asset_id TEXT NOT NULL, units BIGINT NOT NULL,
        mixin_units BIGINT NOT NULL, opponent TEXT NOT NULL, reason TEXT NOT NULL, memo TEXT NOT NULL,
        state TEXT NOT NULL, request_id TEXT NOT NULL, created_ns BIGINT NOT NULL, updated_ns BIGINT NOT NULL)""",
    "CREATE INDEX user_payouts_by_state ON user_payouts (state)",
    "CREATE INDEX user_payouts_by_order ON user_payouts (order_id)",
]


class PayoutKind(enum.Enum):
    REFUND = "refund"  # one refused payment sent back; id refund:<snapshot id>
    RETURN = "return"  # an order returned before it was active (timeout, early stop); return:<order>:<asset>
    PAYOUT = "payout"  # a stopped order paid out; payout:<order>:<asset>

    @property
    def flow(self) -> Flow:
        return Flow.PAYOUT if self is PayoutKind.PAYOUT else Flow.REFUND

    @property
    def cause(self) -> Cause:
        return Cause.PAYOUT if self is PayoutKind.PAYOUT else Cause.REFUND


class PayoutState(enum.Enum):
    QUEUED = "queued"
    SENT = "sent"  # Mixin has it and the ledger booked it
    DUST = "dust"  # too small to send: kept in unclaimed:dust
    FAILED = "failed"  # Mixin refused it for good: an operator must look (the claim stays owed)


@dataclass(frozen=True, slots=True)
class Payout:
    payout_id: str
    kind: PayoutKind
    order_id: str
    snapshot_id: str
    account: Account
    asset: str
    mixin_asset_id: str
    units: int  # ledger units sent (a whole number of Mixin units)
    mixin_units: int
    opponent: str
    reason: str
    memo: str
    state: PayoutState
    request_id: str

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.snapshot_id,) if self.kind is PayoutKind.REFUND else (self.order_id, self.asset)


_COLUMNS = ("payout_id, kind, order_id, snapshot_id, account, asset, mixin_asset_id, units, mixin_units, opponent, "
            "reason, memo, state, request_id")


def _payout(r: Row) -> Payout:
    return Payout(r[0], PayoutKind(r[1]), r[2], r[3], Account.parse(r[4]), r[5], r[6], int(r[7]), int(r[8]), r[9],
                  r[10], r[11], PayoutState(r[12]), r[13])


class Outbox:
    """The queue of money owed back to payers. Writes take the caller's store transaction."""

    def __init__(self, store: Store, ledger: Ledger, assets: AssetMap, limits: Limits, orders: OrderBook) -> None:
        self.store, self.ledger, self.assets, self.limits, self.orders = store, ledger, assets, limits, orders
        store.migrate("user_payouts", MIGRATIONS)

    # --- queueing ---------------------------------------------------------------------------

    def queue(self, tx: Transaction, kind: PayoutKind, *, account: Account, asset: str, mixin_asset_id: str,
              units: int, opponent: str, reason: str, order_id: str = "", snapshot_id: str = "") -> PayoutState:
        """Owes `units` of `asset` from the claim `account` back to `opponent`: a QUEUED row to
        send, or DUST booked now when it is too small to send."""
        ids = (snapshot_id,) if kind is PayoutKind.REFUND else (order_id, asset)
        payout_id = ":".join((kind.value, *ids))
        spec = self.assets.by_mixin_id(mixin_asset_id)
        mixin_units, below = spec.to_mixin(units) if spec is not None else (units, 0)
        sendable = units - below
        if mixin_units <= 0 or units < self.limits.of(asset).dust_units:
            below, sendable = units, 0
        if below:
            self.ledger.post(tx, tx_key(Cause.DUST, kind.value, *ids),
                             acc.transfer(Flow.DUST, asset, below, account, DUST), ref=order_id or snapshot_id,
                             detail={"why": "too small to send back", "payout": payout_id})
        state = PayoutState.QUEUED if sendable else PayoutState.DUST
        memo = f"mixmaker {kind.value}" + (f": {reason}" if reason else "")
        now = time.time_ns()
        tx.execute(f"INSERT INTO user_payouts ({_COLUMNS}, created_ns, updated_ns) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?) ON CONFLICT DO NOTHING",
                   (payout_id, kind.value, order_id, snapshot_id, account.name, asset, mixin_asset_id.lower(),
                    sendable if sendable else units, mixin_units if sendable else 0, opponent, reason, memo,
                    state.value, now, now))
        return state

    def queue_order(self, tx: Transaction, order_id: str, kind: PayoutKind, reason: str) -> None:
        """Owes everything the order's claim holds back to its payer, one row per asset; if there
        is nothing to send the order completes at once."""
        o = self.orders.get(tx, order_id)
        assert o is not None
        for asset, units in sorted(self.ledger.holdings_of(acc.user_order(order_id), tx=tx).items()):
            if units > 0:
                self.queue(tx, kind, account=acc.user_order(order_id), asset=asset,
                           mixin_asset_id=self._mixin_id(asset), units=units, opponent=o.payer, reason=reason,
                           order_id=order_id)
        self._complete_order(tx, order_id)

    def _mixin_id(self, asset: str) -> str:
        # An asset the catalog does not know is kept in the ledger under its Mixin id.
        return self.assets.symbol(asset).mixin_asset_id if asset in self.assets else asset

    # --- booking ----------------------------------------------------------------------------

    def book(self, tx: Transaction, p: Payout, request_id: str) -> bool:
        """Mixin has the payment: books it (REFUND or PAYOUT) and marks the row SENT. Returns
        False if it was booked before (by the worker or by intake seeing the outgoing snapshot).
        A row FAILED before is booked too (with an alert): Mixin's snapshot is the truth."""
        current = tx.query("SELECT state FROM user_payouts WHERE payout_id = ?", (p.payout_id,))
        if not current or current[0][0] not in (PayoutState.QUEUED.value, PayoutState.FAILED.value):
            return False
        if current[0][0] == PayoutState.FAILED.value:  # refused, yet Mixin shows it paid: its truth is booked
            alert(tx, AlertKind.PAYMENT_REFUSED, f"{p.payout_id}:paid", f"{p.kind.value} {p.payout_id} was recorded "
                  f"as refused, but Mixin shows it paid (request {request_id}): booked as sent")
        self.ledger.post(tx, tx_key(p.kind.cause, *p.ids), acc.outflow(p.kind.flow, p.asset, p.units, acc.WALLET, p.account),
                         ref=p.order_id or p.snapshot_id,
                         detail={"to": p.opponent, "request_id": request_id, "reason": p.reason})
        tx.execute("UPDATE user_payouts SET state = ?, request_id = ?, updated_ns = ? WHERE payout_id = ?",
                   (PayoutState.SENT.value, request_id, time.time_ns(), p.payout_id))
        if p.order_id:
            self._complete_order(tx, p.order_id)
        return True

    def fail(self, tx: Transaction, p: Payout, error: str) -> None:
        tx.execute("UPDATE user_payouts SET state = ?, updated_ns = ? WHERE payout_id = ? AND state = ?",
                   (PayoutState.FAILED.value, time.time_ns(), p.payout_id, PayoutState.QUEUED.value))
        alert(tx, AlertKind.PAYMENT_REFUSED, p.payout_id, f"{p.kind.value} of {format_units(p.mixin_units, MIXIN_DECIMALS)} "
              f"{p.asset} to {p.opponent} refused: {error}; the claim {p.account} stays owed")
        if p.order_id:
            o = self.orders.get(tx, p.order_id)
            if o is not None and o.state in (OrderState.PAYING, OrderState.REFUNDING):
                self.orders.fire(tx, p.order_id, OrderEvent.ERROR, p.payout_id, detail={"error": error})

    def _complete_order(self, tx: Transaction, order_id: str) -> None:
        open_rows = tx.query("SELECT COUNT(*) FROM user_payouts WHERE order_id = ? AND state IN (?, ?)",
                             (order_id, PayoutState.QUEUED.value, PayoutState.FAILED.value))[0][0]
        o = self.orders.get(tx, order_id)
        if open_rows or o is None:
            return
        if o.state is OrderState.PAYING:
            self.orders.fire(tx, order_id, OrderEvent.PAID, "payouts")
        elif o.state is OrderState.REFUNDING:
            self.orders.fire(tx, order_id, OrderEvent.REFUND_SENT, "returns")

    # --- reading ----------------------------------------------------------------------------

    def get(self, q: Transaction | Store, payout_id: str) -> Payout | None:
        rows = q.query(f"SELECT {_COLUMNS} FROM user_payouts WHERE payout_id = ?", (payout_id,))
        return _payout(rows[0]) if rows else None

    def queued(self) -> list[Payout]:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM user_payouts WHERE state = ? ORDER BY created_ns, payout_id",
                                (PayoutState.QUEUED.value,))
        return [_payout(r) for r in rows]

    def of_order(self, order_id: str) -> list[Payout]:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM user_payouts WHERE order_id = ? ORDER BY payout_id",
                                (order_id,))
        return [_payout(r) for r in rows]

    def all(self) -> list[Payout]:
        return [_payout(r) for r in self.store.query(f"SELECT {_COLUMNS} FROM user_payouts ORDER BY created_ns, payout_id")]


Crash = Callable[[str, str], None]


class PayoutWorker:
    """Sends the outbox. Safe to run after any crash: `Payments` answers a known cause with the
    payment it already made, and booking is keyed and guarded by the row's state."""

    def __init__(self, outbox: Outbox, payments: Payments, *, crash_at: Crash | None = None) -> None:
        self.outbox, self.payments = outbox, payments
        self._crash_at = crash_at or (lambda step, payout_id: None)

    async def run_once(self) -> int:
        """Sends what is queued now; returns how many were booked as sent."""
        done = 0
        for p in self.outbox.queued():
            done += await self.send(p)
        return done

    async def send(self, p: Payout) -> bool:
        amount = format_units(p.mixin_units, MIXIN_DECIMALS, trim=True)
        try:
            paid = await self.payments.transfer(p.payout_id, p.mixin_asset_id, amount, p.opponent, p.memo.encode())
        except (PaymentFailedError, PaymentConflictError, ValueError) as e:
            # ValueError: Payments refuses the row's own ids (an asset no longer configured, say);
            # raised on, it stopped every later row of the outbox at each pass.
            with self.outbox.store.transaction() as tx:
                self.outbox.fail(tx, p, str(e))
            return False
        except InsufficientOutputsError as e:  # not a guess: it waits, queued, and an operator is told
            with self.outbox.store.transaction() as tx:
                alert(tx, AlertKind.WALLET_SHORT, p.payout_id, f"{p.kind.value} of "
                      f"{format_units(p.mixin_units, MIXIN_DECIMALS)} {p.asset} to {p.opponent} waits: the wallet "
                      f"holds too little ({e}); it is sent once the wallet holds enough")
            return False
        except (MixinError, LeaseError) as e:  # outputs in flight, the network, a 5xx, another payer: later
            log.warning("payout %s not sent yet: %s", p.payout_id, e)
            return False
        if paid.state == PaymentState.FAILED:  # refused in an earlier run that died before the outbox knew
            with self.outbox.store.transaction() as tx:
                self.outbox.fail(tx, p, paid.error)
            return False
        if paid.state not in (PaymentState.SENT, PaymentState.CONFIRMED):
            return False  # an unclear outcome Payments keeps; the next pass asks again
        self._crash_at("paid", p.payout_id)
        with self.outbox.store.transaction() as tx:
            booked = self.outbox.book(tx, p, paid.request_id)
            self._crash_at("booked", p.payout_id)  # inside: the booking rolls back
        return booked
