"""Snapshot intake: every snapshot of the bot's wallet is classified exactly once, and only users'
payments credit users.

`Intake.handle(tx, snapshot)` is the `SnapshotReader`'s handler: it runs inside the reader's store
transaction, so the classification, the ledger posting, the user order's change, the queued
refund and the snapshot cursor commit together or not at all.

- USER_PAYMENT (incoming, from a user, not a deposit): the memo decides. A valid memo for a pool
  the catalog offers credits the user order (`order:<id>`); anything else is booked to the claim
  `refund:<snapshot id>` and a refund with its `RefundReason` is queued to the payer (or kept as
  dust in `unclaimed:dust` when too small to send).
- OUR_OUTGOING: money we sent (a refund, a payout, a move); matched on Mixin's request id to our
  `mixin_payments`. A refund or payout Mixin has is booked here too if the payout worker has not
  yet (same key, so never twice). An outgoing nobody of ours made raises an alert.
- CHANGE: our own change coming back (opponent is the bot itself): no effect.
- OWN_DEPOSIT: the arrival of our own funds back from an exchange — a chain deposit matched on
  `deposit_hash` (never on the amount; issue 16), or the stand-in allocator's transfer from the
  exchange simulator's custody user. `OwnDeposits` recognises and books it; without one, deposits
  are UNKNOWN.
- UNKNOWN: any other incoming money (an opponent that is not a Mixin user id included: it could
  not be paid back): wallet +, `unclaimed:unknown` -, and an alert.
- NOT_OURS: a snapshot of another user than the bot (a sub-user): recorded and alerted, no money.
"""

from __future__ import annotations

import enum
from typing import Protocol

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Flow
from mixmaker.funds.assets import AssetSpec
from mixmaker.funds.ledger import MAX_UNITS, Cause, Ledger, tx_key
from mixmaker.mixin import payments as mixin_payments
from mixmaker.mixin.ids import parse_uuid
from mixmaker.mixin.models import Snapshot
from mixmaker.money import MIXIN_DECIMALS
from mixmaker.store import Store
from mixmaker.store.base import Transaction
from mixmaker.users import alerts
from mixmaker.users.alerts import AlertKind, alert
from mixmaker.users.catalog import Catalog
from mixmaker.users.errors import UserError
from mixmaker.users.memo import AddMemo, CreateMemo, MemoError, StopMemo, decode_extra
from mixmaker.users.orders import OrderBook, OrderEvent, OrderState, UserOrder, accepts
from mixmaker.users.payouts import Outbox, PayoutKind

MIGRATIONS = [
    """CREATE TABLE user_intake (
        snapshot_id TEXT PRIMARY KEY, class TEXT NOT NULL, asset TEXT NOT NULL, units BIGINT NOT NULL,
        opponent TEXT NOT NULL, order_id TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
        detail TEXT NOT NULL, created_at_ns BIGINT NOT NULL)""",
]


class SnapshotClass(enum.Enum):
    USER_PAYMENT = "user_payment"
    OUR_OUTGOING = "our_outgoing"
    CHANGE = "change"
    OWN_DEPOSIT = "own_deposit"
    UNKNOWN = "unknown"
    NOT_OURS = "not_ours"


class Outcome(enum.Enum):
    CREDITED = "credited"  # a user order's claim grew
    REFUND = "refund"  # owed back to the payer (queued, or dust)
    BOOKED = "booked"  # our own refund/payout seen on Mixin (or a move, by issue 16)
    NOTHING = "nothing"  # change, zero amounts, outgoing already booked
    UNCLAIMED = "unclaimed"  # kept in unclaimed:unknown
    ALERT = "alert"  # no money booked; an operator must look


class RefundReason(enum.Enum):
    BAD_MEMO = "bad_memo"  # the memo is not a valid v1 memo (the MemoFault is in the detail)
    UNKNOWN_MARKET = "unknown_market"
    UNKNOWN_PRESET = "unknown_preset"  # not a preset, or not offered on this market
    ASSET_NOT_IN_MARKET = "asset_not_in_market"
    BELOW_MINIMUM = "below_minimum"
    ABOVE_CAP = "above_cap"  # over the per-user cap across the payer's live orders
    POOL_PAUSED = "pool_paused"
    NOT_YOUR_ORDER = "not_your_order"  # the order id belongs to another payer
    UNKNOWN_ORDER = "unknown_order"  # an add or stop for an order that does not exist
    MEMO_MISMATCH = "memo_mismatch"  # a create memo for an existing order, with other terms
    ALREADY_FUNDED = "already_funded"  # a create payment after the order was funded: use an add memo
    ORDER_CLOSED = "order_closed"  # the order no longer takes this (stopping, settled, refunded...)
    TIMEOUT = "timeout"  # an order not funded in time, returned as it arrived
    STOPPED = "stopped"  # stopped before its funds were put to work, returned as it arrived


class OwnDeposits(Protocol):
    """The funds layer's seam: recognises and books the arrival of our own funds back on Mixin
    (a withdrawal from an exchange matched on `deposit.deposit_hash`, or the stand-in allocator's
    custody transfer). Asked about every incoming snapshot before it is taken as a payment."""

    def matches(self, tx: Transaction, snapshot: Snapshot) -> bool: ...

    def book(self, tx: Transaction, snapshot: Snapshot) -> None: ...


def _is_user_id(opponent_id: str) -> bool:
    try:
        parse_uuid(opponent_id)
    except ValueError:
        return False
    return True


class _Refuse(UserError):
    """Inside intake only: this payment is refunded for `reason` (never escapes `handle`)."""

    def __init__(self, reason: RefundReason, detail: str = "") -> None:
        self.reason, self.detail = reason, detail


class Intake:
    def __init__(self, store: Store, ledger: Ledger, catalog: Catalog, orders: OrderBook, outbox: Outbox, *,
                 app_id: str, own_deposits: OwnDeposits | None = None) -> None:
        self.store, self.ledger, self.catalog, self.orders, self.outbox = store, ledger, catalog, orders, outbox
        self.app_id = app_id
        self.own_deposits = own_deposits
        store.migrate("user_intake", MIGRATIONS)
        store.migrate("mixin_payments", mixin_payments.MIGRATIONS)  # matched against; Payments owns it
        alerts.migrate(store)
        catalog.assets.register(ledger)

    # --- the handler ------------------------------------------------------------------------

    def handle(self, tx: Transaction, s: Snapshot) -> None:
        """Classifies and books one snapshot inside the reader's transaction `tx`. Never raises
        for a user's input (bad memos, amounts, ids are refunds); raises only on a bug or a store
        failure, which keeps the page and its cursor uncommitted."""
        fresh = tx.execute(
            "INSERT INTO user_intake (snapshot_id, class, asset, units, opponent, order_id, outcome, reason, detail, "
            "created_at_ns) VALUES (?, '', ?, ?, ?, '', '', '', '', ?) ON CONFLICT DO NOTHING",
            (s.snapshot_id, s.asset_id, s.units, s.opponent_id or "", s.created_at_ns))
        if not fresh:
            return  # classified before (a re-scan from an older cursor finds it again)
        cls = self.classify(tx, s)
        handler = {
            SnapshotClass.USER_PAYMENT: self._user_payment,
            SnapshotClass.OUR_OUTGOING: self._our_outgoing,
            SnapshotClass.CHANGE: self._nothing,
            SnapshotClass.OWN_DEPOSIT: self._own_deposit,
            SnapshotClass.UNKNOWN: self._unknown,
            SnapshotClass.NOT_OURS: self._not_ours,
        }[cls]
        outcome, order_id, reason, detail = handler(tx, s)
        tx.execute("UPDATE user_intake SET class = ?, order_id = ?, outcome = ?, reason = ?, detail = ? "
                   "WHERE snapshot_id = ?", (cls.value, order_id, outcome.value, reason, detail, s.snapshot_id))

    def classify(self, tx: Transaction, s: Snapshot) -> SnapshotClass:
        if s.user_id and s.user_id != self.app_id:
            return SnapshotClass.NOT_OURS
        if s.units < 0:
            return SnapshotClass.OUR_OUTGOING
        if s.units == 0:
            return SnapshotClass.UNKNOWN
        # Our own funds coming back: a chain deposit (issue 16), or issue 15's stand-in, a
        # transfer from the exchange simulator's custody user. Asked before anything else.
        if self.own_deposits is not None and self.own_deposits.matches(tx, s):
            return SnapshotClass.OWN_DEPOSIT
        if s.deposit is not None:
            return SnapshotClass.UNKNOWN
        if s.opponent_id == self.app_id:
            return SnapshotClass.CHANGE
        if _is_user_id(s.opponent_id):  # a payer we can pay back (refunds go to it, and only to it)
            return SnapshotClass.USER_PAYMENT
        return SnapshotClass.UNKNOWN

    # --- classes ----------------------------------------------------------------------------

    def _nothing(self, tx: Transaction, s: Snapshot) -> tuple[Outcome, str, str, str]:
        return Outcome.NOTHING, "", "", ""

    def _not_ours(self, tx: Transaction, s: Snapshot) -> tuple[Outcome, str, str, str]:
        alert(tx, AlertKind.NOT_OUR_SNAPSHOT, s.snapshot_id, f"snapshot of user {s.user_id}, not the bot")
        return Outcome.ALERT, "", "", s.user_id

    def _own_deposit(self, tx: Transaction, s: Snapshot) -> tuple[Outcome, str, str, str]:
        assert self.own_deposits is not None
        self.own_deposits.book(tx, s)
        return Outcome.BOOKED, "", "", str((s.deposit or {}).get("deposit_hash", ""))

    def _unknown(self, tx: Transaction, s: Snapshot) -> tuple[Outcome, str, str, str]:
        if s.units <= 0:
            return Outcome.NOTHING, "", "", "no amount"
        symbol, units = self._asset(tx, s)
        self.ledger.post(tx, tx_key(Cause.UNKNOWN_DEPOSIT, s.snapshot_id),
                         acc.inflow(Flow.UNKNOWN_DEPOSIT, symbol, units, acc.WALLET, acc.unclaimed("unknown")),
                         ref=s.snapshot_id, detail={"opponent": s.opponent_id, "deposit": s.deposit or {}})
        alert(tx, AlertKind.UNKNOWN_DEPOSIT, s.snapshot_id,
              f"{self.ledger.format(symbol, units)} {symbol} arrived with no known cause "
              f"(opponent {s.opponent_id or '-'}, deposit {bool(s.deposit)}): kept in unclaimed:unknown")
        return Outcome.UNCLAIMED, "", "", ""

    def _our_outgoing(self, tx: Transaction, s: Snapshot) -> tuple[Outcome, str, str, str]:
        rows = tx.query("SELECT cause FROM mixin_payments WHERE request_id = ?", (s.request_id,)) if s.request_id else []
        # A move's separate fee transaction (its request id is not the payment's): the funds layer's.
        outgoing = getattr(self.own_deposits, "outgoing", None)
        if not rows and outgoing is not None and outgoing(tx, s):
            return Outcome.NOTHING, "", "", "move fee"
        if not rows:
            alert(tx, AlertKind.UNEXPECTED_OUTGOING, s.snapshot_id,
                  f"{-s.units} units of {s.asset_id} left the wallet (request {s.request_id or '-'}) and no payment of "
                  "ours explains it")
            return Outcome.ALERT, "", "", s.request_id
        cause = rows[0][0]
        p = self.outbox.get(tx, cause)
        if p is None:
            return Outcome.NOTHING, "", "", cause  # a move or another component's payment: theirs to book
        if (-s.units, s.asset_id.lower()) != (p.mixin_units, p.mixin_asset_id):
            # Booking our row's amount for what Mixin shows would make the books lie: an operator looks.
            alert(tx, AlertKind.UNEXPECTED_OUTGOING, s.snapshot_id,
                  f"{-s.units} units of {s.asset_id} left the wallet under {p.kind.value} {p.payout_id}'s request "
                  f"{s.request_id}, which was to send {p.mixin_units} units of {p.mixin_asset_id}: not booked")
            return Outcome.ALERT, p.order_id, "", cause
        booked = self.outbox.book(tx, p, s.request_id)
        return (Outcome.BOOKED if booked else Outcome.NOTHING), p.order_id, "", cause

    # --- users' payments --------------------------------------------------------------------

    def _asset(self, tx: Transaction, s: Snapshot) -> tuple[str, int]:
        """The ledger symbol and units of the snapshot's asset. An asset the catalog does not
        know is kept under its Mixin id at Mixin's 8 decimals, so the wallet is whole anyway."""
        spec = self.catalog.assets.by_mixin_id(s.asset_id)
        if spec is not None:
            return spec.symbol, spec.from_mixin(abs(s.units))
        self.ledger.register_asset(s.asset_id.lower(), MIXIN_DECIMALS, tx=tx)
        return s.asset_id.lower(), abs(s.units)

    def _user_payment(self, tx: Transaction, s: Snapshot) -> tuple[Outcome, str, str, str]:
        symbol, units = self._asset(tx, s)
        spec = self.catalog.assets.by_mixin_id(s.asset_id)
        order_id = ""
        try:
            try:
                memo = decode_extra(s.memo)
            except MemoError as e:
                raise _Refuse(RefundReason.BAD_MEMO, f"{e.fault.value}: {e.detail}" if e.detail else e.fault.value) from None
            order_id = memo.order_id
            if isinstance(memo, CreateMemo):
                order = self._create(tx, s, memo, spec, symbol, units)
                action = "create"
            else:
                order = self._existing(tx, s, memo.order_id)
                action = "add" if isinstance(memo, AddMemo) else "stop"
                event = OrderEvent.PAYMENT if isinstance(memo, AddMemo) else OrderEvent.STOP
                if not accepts(order.state, event):
                    raise _Refuse(RefundReason.ORDER_CLOSED, f"the order is {order.state.value}")
                if isinstance(memo, AddMemo):
                    self._check_pool(order)
                self._check_asset(order, symbol)
                if isinstance(memo, AddMemo):
                    self._check_amount(tx, s, symbol, units, minimum=self.catalog.limits.of(symbol).min_units)
        except _Refuse as r:
            self._refuse(tx, s, symbol, units, r, order_id)
            return Outcome.REFUND, order_id, r.reason.value, r.detail
        self._credit(tx, s, order, symbol, units, action)
        if isinstance(memo, StopMemo):
            self._stop(tx, order.order_id, s.snapshot_id)
        return Outcome.CREDITED, order.order_id, "", action

    def _create(self, tx: Transaction, s: Snapshot, memo: CreateMemo, spec: AssetSpec | None, symbol: str,
                units: int) -> UserOrder:
        order = self.orders.get(tx, memo.order_id)
        if order is not None:
            if order.payer != s.opponent_id:
                raise _Refuse(RefundReason.NOT_YOUR_ORDER)
            mine = (order.market, order.preset, order.expect_base, order.expect_quote)
            if mine != (memo.market, memo.preset, *self._expected(memo)):
                raise _Refuse(RefundReason.MEMO_MISMATCH, "a create memo for this order id with other terms")
            if order.state is not OrderState.AWAITING_FUNDS:
                raise _Refuse(RefundReason.ALREADY_FUNDED if accepts(order.state, OrderEvent.PAYMENT)
                              else RefundReason.ORDER_CLOSED, f"the order is {order.state.value}")
            self._check_pool(order)
            self._check_asset(order, symbol)
            self._check_amount(tx, s, symbol, units, minimum=0)
            return order
        market = self.catalog.find_market(memo.market)
        if market is None:
            raise _Refuse(RefundReason.UNKNOWN_MARKET, memo.market)
        if self.catalog.find_preset(memo.preset) is None:
            raise _Refuse(RefundReason.UNKNOWN_PRESET, memo.preset)
        pool = self.catalog.find_pool(memo.market, memo.preset)
        if pool is None:
            raise _Refuse(RefundReason.UNKNOWN_PRESET, f"{memo.preset} is not offered on {memo.market}")
        if self.catalog.is_paused(pool.pool_id):
            raise _Refuse(RefundReason.POOL_PAUSED, pool.pool_id)
        if spec is None or spec.symbol not in market.assets:
            raise _Refuse(RefundReason.ASSET_NOT_IN_MARKET, f"{symbol} is not in {market.name}")
        expect_base, expect_quote = self._expected(memo)
        for asset, expected in ((market.base, expect_base), (market.quote, expect_quote)):
            lim = self.catalog.limits.of(asset)
            if expected and expected < lim.min_units:
                raise _Refuse(RefundReason.BELOW_MINIMUM, f"{asset}: expects {self.ledger.format(asset, expected)}, "
                              f"the minimum is {self.ledger.format(asset, lim.min_units)}")
            # No configured cap still leaves the ledger's own (a memo's u64 may not fit a BIGINT).
            cap = MAX_UNITS if lim.max_units_per_user is None else min(lim.max_units_per_user, MAX_UNITS)
            if expected > cap:
                raise _Refuse(RefundReason.ABOVE_CAP, f"{asset}: expects {self.ledger.format(asset, expected)}, "
                              f"the cap is {self.ledger.format(asset, cap)}")
        self._check_amount(tx, s, symbol, units, minimum=0)
        return self.orders.create(
            tx, order_id=memo.order_id, payer=s.opponent_id, pool_id=pool.pool_id, market=market.name,
            preset=memo.preset, base=market.base, quote=market.quote, expect_base=expect_base,
            expect_quote=expect_quote, deadline_ns=s.created_at_ns + self.catalog.limits.funding_timeout_ns,
            cause=s.snapshot_id)

    def _expected(self, memo: CreateMemo) -> tuple[int, int]:
        market = self.catalog.find_market(memo.market)
        if market is None:
            return memo.base_units, memo.quote_units
        a = self.catalog.assets
        return a.symbol(market.base).from_mixin(memo.base_units), a.symbol(market.quote).from_mixin(memo.quote_units)

    def _existing(self, tx: Transaction, s: Snapshot, order_id: str) -> UserOrder:
        order = self.orders.get(tx, order_id)
        if order is None:
            raise _Refuse(RefundReason.UNKNOWN_ORDER, order_id)
        if order.payer != s.opponent_id:
            raise _Refuse(RefundReason.NOT_YOUR_ORDER)
        return order

    def _check_pool(self, order: UserOrder) -> None:
        if self.catalog.is_paused(order.pool_id):
            raise _Refuse(RefundReason.POOL_PAUSED, order.pool_id)

    def _check_asset(self, order: UserOrder, symbol: str) -> None:
        if symbol not in order.assets:
            raise _Refuse(RefundReason.ASSET_NOT_IN_MARKET, f"{symbol or 'this asset'} is not in {order.market}")

    def _check_amount(self, tx: Transaction, s: Snapshot, symbol: str, units: int, *, minimum: int) -> None:
        if units < minimum:
            raise _Refuse(RefundReason.BELOW_MINIMUM, f"{self.ledger.format(symbol, units)} {symbol}, the minimum is "
                          f"{self.ledger.format(symbol, minimum)}")
        cap = self.catalog.limits.of(symbol).max_units_per_user
        if cap is not None:
            live = self.orders.live_paid_by(tx, s.opponent_id, symbol)
            if live + units > cap:
                raise _Refuse(RefundReason.ABOVE_CAP, f"{self.ledger.format(symbol, live + units)} {symbol} in live "
                              f"orders, the cap is {self.ledger.format(symbol, cap)}")

    # --- effects ----------------------------------------------------------------------------

    def _credit(self, tx: Transaction, s: Snapshot, order: UserOrder, symbol: str, units: int, action: str) -> None:
        oid = order.order_id
        self.ledger.post(tx, tx_key(Cause.PAYMENT, s.snapshot_id),
                         acc.inflow(Flow.PAYMENT, symbol, units, acc.WALLET, acc.user_order(oid)), ref=oid,
                         detail={"snapshot": s.snapshot_id, "action": action, "payer": s.opponent_id})
        self.orders.record_payment(tx, oid, s.snapshot_id, action, symbol, units, s.created_at_ns)
        if action == "stop":
            return  # the stop's own payment rides with the payout; the STOP event follows
        order = self.orders.fire(tx, oid, OrderEvent.PAYMENT, s.snapshot_id, detail={"asset": symbol, "units": units}).order
        if order.state is OrderState.AWAITING_FUNDS:
            paid = self.orders.paid(tx, oid)
            if all(paid.get(a, 0) >= order.expected(a) for a in order.assets):
                self.orders.fire(tx, oid, OrderEvent.FUNDING_COMPLETE, s.snapshot_id, detail={"paid": paid})

    def _stop(self, tx: Transaction, order_id: str, cause: str) -> None:
        before = self.orders.get(tx, order_id)
        assert before is not None
        if before.state is OrderState.ALLOCATING:
            self.orders.fire(tx, order_id, OrderEvent.STOP, cause, stop_requested=True)
            return
        after = self.orders.fire(tx, order_id, OrderEvent.STOP, cause).order
        if after.state is OrderState.REFUNDING:
            self.outbox.queue_order(tx, order_id, PayoutKind.RETURN, RefundReason.STOPPED.value)

    def _refuse(self, tx: Transaction, s: Snapshot, symbol: str, units: int, r: _Refuse, order_id: str) -> None:
        claim = acc.refund(s.snapshot_id)
        self.ledger.post(tx, tx_key(Cause.PAYMENT, s.snapshot_id), acc.inflow(Flow.PAYMENT, symbol, units, acc.WALLET, claim),
                         ref=s.snapshot_id, detail={"refund": r.reason.value, "why": r.detail, "order": order_id,
                                                    "payer": s.opponent_id})
        self.outbox.queue(tx, PayoutKind.REFUND, account=claim, asset=symbol, mixin_asset_id=s.asset_id, units=units,
                          opponent=s.opponent_id, reason=r.reason.value, snapshot_id=s.snapshot_id)

    # --- reading ----------------------------------------------------------------------------

    def record(self, snapshot_id: str) -> dict[str, str] | None:
        rows = self.store.query("SELECT class, outcome, reason, order_id, detail FROM user_intake WHERE snapshot_id = ?",
                                (snapshot_id,))
        if not rows:
            return None
        return dict(zip(("class", "outcome", "reason", "order_id", "detail"), rows[0], strict=True))
