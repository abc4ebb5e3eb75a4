"""A plain-Python model of the order state machine in `rust_core/src/orders/`.

Written from the rules (the SPEC table in `rust_core/src/orders/tests.rs` and the semantics
documented in `order.rs`), not translated from the Rust control flow, so the property tests in
`test_order_model.py` compare two independent readings of the same rules. It is also the
pure-Python peer in `benches/bench_orders.py`, which is why it is deliberately straightforward:
a dict for the table, an object per order, no tricks.

Amounts are Python ints in the market's scale, like the Rust core's i64/i128; the i64 and i128
bounds are checked where the core checks them, so an overflow is an error in both.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Optional

# --- states and events ---------------------------------------------------------------------

INITIALIZED = "INITIALIZED"
PENDING_CREATE = "PENDING_CREATE"
OPEN = "OPEN"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
PENDING_CANCEL = "PENDING_CANCEL"
CANCELED = "CANCELED"
FILLED = "FILLED"
FAILED = "FAILED"
EXPIRED = "EXPIRED"
LOST = "LOST"

STATES = (INITIALIZED, PENDING_CREATE, OPEN, PARTIALLY_FILLED, PENDING_CANCEL, CANCELED, FILLED, FAILED, EXPIRED, LOST)
TERMINAL = frozenset({CANCELED, FILLED, FAILED, EXPIRED})

EVENTS = ("submitted", "accepted", "rejected", "fill", "cancel_requested", "canceled", "cancel_rejected", "not_found", "expired")

# Events that are not news from the venue about the order being alive: they keep the
# consecutive "not found" count (everything else that is applied resets it).
NOT_A_SIGN_OF_LIFE = frozenset({"not_found", "cancel_requested", "submitted"})

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
I128_MIN, I128_MAX = -(2**127), 2**127 - 1
U32_MAX = 2**32 - 1

# --- errors --------------------------------------------------------------------------------
# Each names the mixmaker._core exception it stands for (`rust_name`), so tests can match them.


class ModelError(Exception):
    rust_name = "OrderError"


class ModelInvalidTransition(ModelError):
    rust_name = "InvalidTransitionError"

    def __init__(self, client_id: str, state: str, event: str) -> None:
        super().__init__(f"order {client_id}: event '{event}' cannot happen in state {state}")
        self.client_id, self.state, self.event = client_id, state, event


class ModelExchangeIdConflict(ModelError):
    rust_name = "ExchangeIdConflictError"


class ModelUnknownOrder(ModelError):
    rust_name = "UnknownOrderError"


class ModelBadInput(ModelError):
    """A bad order or fill, a duplicate client id, an overflow."""
    rust_name = "OrderInputError"


class ModelEventFormat(ModelError):
    """A call that does not describe an event at all (unknown name, ack without an id, a bad
    side): the core raises OrderInputError (an ArgumentError) for these, before touching any
    order."""
    rust_name = "OrderInputError"


# --- the table -----------------------------------------------------------------------------
# Each (state, event) pair maps to a rule: a tuple whose first item says what kind.

TO = "to"                          # (TO, state): move there
BEGIN_CANCEL = "begin_cancel"      # enter PENDING_CANCEL, remember where we were
RESTORE = "restore"                # back to where we were before the cancel request
FILL = "fill"                      # (FILL, partial): FILLED once complete, else `partial`
ACK = "ack"                        # (ACK, state or None): record the exchange id; move, or stay
FOUND = "found"                    # a LOST order shows up: OPEN, or PARTIALLY_FILLED with fills
COUNT_NOT_FOUND = "count_not_found"  # count it; LOST at lost_after
REJECT_UNACKED = "reject_unacked"  # a late reject: only if never acked (no exchange id) and nothing traded
IGNORE = "ignore"                  # (IGNORE, reason): nothing changes
INVALID = "invalid"                # cannot happen: an error, nothing changes

X = (INVALID,)

TABLE: dict[str, dict[str, tuple]] = {
    INITIALIZED: {
        "submitted": (TO, PENDING_CREATE), "accepted": X, "rejected": (TO, FAILED), "fill": X,
        "cancel_requested": X, "canceled": X, "cancel_rejected": X, "not_found": X, "expired": X,
    },
    PENDING_CREATE: {
        "submitted": X, "accepted": (ACK, OPEN), "rejected": (TO, FAILED), "fill": (FILL, PARTIALLY_FILLED),
        "cancel_requested": (BEGIN_CANCEL,), "canceled": (TO, CANCELED), "cancel_rejected": X,
        "not_found": (COUNT_NOT_FOUND,), "expired": (TO, EXPIRED),
    },
    OPEN: {
        "submitted": X, "accepted": (ACK, None), "rejected": X, "fill": (FILL, PARTIALLY_FILLED),
        "cancel_requested": (BEGIN_CANCEL,), "canceled": (TO, CANCELED), "cancel_rejected": X,
        "not_found": (COUNT_NOT_FOUND,), "expired": (TO, EXPIRED),
    },
    PARTIALLY_FILLED: {
        "submitted": X, "accepted": (ACK, None), "rejected": X, "fill": (FILL, PARTIALLY_FILLED),
        "cancel_requested": (BEGIN_CANCEL,), "canceled": (TO, CANCELED), "cancel_rejected": X,
        "not_found": (COUNT_NOT_FOUND,), "expired": (TO, EXPIRED),
    },
    PENDING_CANCEL: {
        "submitted": X, "accepted": (ACK, None), "rejected": (REJECT_UNACKED,), "fill": (FILL, PENDING_CANCEL),
        "cancel_requested": (IGNORE, "cancel_in_flight"), "canceled": (TO, CANCELED), "cancel_rejected": (RESTORE,),
        "not_found": (COUNT_NOT_FOUND,), "expired": (TO, EXPIRED),
    },
    CANCELED: {
        "submitted": X, "accepted": (ACK, None), "rejected": X, "fill": (FILL, CANCELED),
        "cancel_requested": X, "canceled": (IGNORE, "duplicate"), "cancel_rejected": (IGNORE, "stale"),
        "not_found": (IGNORE, "stale"), "expired": X,
    },
    FILLED: {
        "submitted": X, "accepted": (ACK, None), "rejected": X, "fill": (FILL, FILLED),
        "cancel_requested": X, "canceled": X, "cancel_rejected": (IGNORE, "stale"),
        "not_found": (IGNORE, "stale"), "expired": X,
    },
    FAILED: {
        "submitted": X, "accepted": X, "rejected": (IGNORE, "duplicate"), "fill": X,
        "cancel_requested": X, "canceled": X, "cancel_rejected": (IGNORE, "stale"),
        "not_found": (IGNORE, "stale"), "expired": X,
    },
    EXPIRED: {
        "submitted": X, "accepted": (ACK, None), "rejected": X, "fill": (FILL, EXPIRED),
        "cancel_requested": X, "canceled": X, "cancel_rejected": (IGNORE, "stale"),
        "not_found": (IGNORE, "stale"), "expired": (IGNORE, "duplicate"),
    },
    LOST: {
        "submitted": X, "accepted": (FOUND,), "rejected": (REJECT_UNACKED,), "fill": (FILL, PARTIALLY_FILLED),
        "cancel_requested": (BEGIN_CANCEL,), "canceled": (TO, CANCELED), "cancel_rejected": (IGNORE, "stale"),
        "not_found": (COUNT_NOT_FOUND,), "expired": (TO, EXPIRED),
    },
}

# Every pair spelled out, as in the Rust table: a missing one is a bug in this file.
assert set(TABLE) == set(STATES) and all(set(row) == set(EVENTS) for row in TABLE.values())


# --- events and outcomes -------------------------------------------------------------------


class Event(NamedTuple):
    kind: str
    exchange_id: Optional[str] = None
    trade_id: Optional[str] = None
    price: int = 0
    qty: int = 0
    fee: int = 0
    fee_asset: str = ""
    is_maker: bool = False


def make_event(kind, exchange_id=None, trade_id=None, price=0, qty=0, fee=0, fee_asset="", is_maker=False) -> Event:
    if kind not in TABLE[INITIALIZED]:
        raise ModelEventFormat(f"unknown order event {kind!r}")
    if kind == "accepted" and not exchange_id:
        raise ModelEventFormat("an 'accepted' event needs exchange_id")
    return Event(kind, exchange_id, trade_id, price, qty, fee, fee_asset, is_maker)


class Outcome(NamedTuple):
    """Same fields as mixmaker._core.Outcome."""
    applied: bool
    before: Optional[str] = None
    after: Optional[str] = None
    ignored: Optional[str] = None
    error: Optional[str] = None
    message: Optional[str] = None


def ignored(reason: str) -> Outcome:
    return Outcome(False, ignored=reason)


# --- one order -----------------------------------------------------------------------------


class Order:
    def __init__(self, client_id: str, symbol: str, side: str, price: int, quantity: int, lost_after: int = 3) -> None:
        if side not in ("buy", "sell"):
            raise ModelEventFormat(f"side must be 'buy' or 'sell', not {side!r}")
        if not client_id:
            raise ModelBadInput("client order id is empty")
        if not symbol:
            raise ModelBadInput("symbol is empty")
        if price <= 0:
            raise ModelBadInput("price must be positive")
        if quantity <= 0:
            raise ModelBadInput("quantity must be positive")
        if lost_after < 1:
            raise ModelBadInput("lost_after must be at least 1")
        self.client_id = client_id
        self.exchange_id: Optional[str] = None
        self.symbol = symbol
        self.side = side
        self.price = price
        self.quantity = quantity
        self.lost_after = lost_after
        self.state = INITIALIZED
        self.previous: Optional[str] = None  # set only while PENDING_CANCEL
        self.filled = 0
        self.cost = 0
        self.fees: list[list] = []   # [asset, total], in order of first appearance
        self.trade_ids: set[str] = set()
        self.not_found = 0
        self.late_fills = 0

    # Derived numbers, computed on demand like the core's accessors.

    @property
    def is_live(self) -> bool:
        return self.state not in TERMINAL

    @property
    def remaining(self) -> int:
        return max(0, self.quantity - self.filled) if self.is_live else 0

    @property
    def overfill(self) -> int:
        return max(0, self.filled - self.quantity)

    @property
    def avg_price(self) -> Optional[int]:
        if self.filled == 0:
            return None
        # cost and filled are positive, so floor division is truncation; round half up.
        whole, rest = divmod(self.cost, self.filled)
        return whole + 1 if 2 * rest >= self.filled else whole

    def view(self) -> dict:
        """The same fields as mixmaker._core.OrderView."""
        return {
            "client_id": self.client_id,
            "exchange_id": self.exchange_id,
            "symbol": self.symbol,
            "side": self.side,
            "price": self.price,
            "quantity": self.quantity,
            "state": self.state,
            "previous": self.previous,
            "filled": self.filled,
            "remaining": self.remaining,
            "overfill": self.overfill,
            "cost": self.cost,
            "avg_price": self.avg_price,
            "fees": [(asset, total) for asset, total in self.fees],
            "fill_count": len(self.trade_ids),
            "not_found": self.not_found,
            "lost_after": self.lost_after,
            "late_fills": self.late_fills,
            "is_live": self.is_live,
        }

    def apply(self, event: Event) -> Outcome:
        """Apply one event. Returns an Outcome (applied or ignored) or raises a ModelError with
        the order unchanged."""
        kind = event.kind
        # A trade id seen before is the same trade, whatever the state and the numbers.
        if kind == "fill" and event.trade_id in self.trade_ids:
            return ignored("duplicate_fill")

        before = self.state
        rule = TABLE[before][kind]
        what = rule[0]

        if what == INVALID:
            raise ModelInvalidTransition(self.client_id, before, kind)
        if what == IGNORE:
            return ignored(rule[1])

        if what == TO:
            after = rule[1]

        elif what == BEGIN_CANCEL:
            self.previous = before
            after = PENDING_CANCEL

        elif what == RESTORE:
            after = self.previous

        elif what == REJECT_UNACKED:
            # The venue can reject the create only if it never acked it and nothing traded.
            if self.exchange_id is not None or self.filled > 0:
                raise ModelInvalidTransition(self.client_id, before, kind)
            after = FAILED

        elif what == COUNT_NOT_FOUND:
            self.not_found += 1
            after = LOST if self.not_found >= self.lost_after else before

        elif what == FOUND:
            self._check_exchange_id(event.exchange_id)
            self.exchange_id = event.exchange_id
            after = PARTIALLY_FILLED if self.filled > 0 else OPEN

        elif what == ACK:
            known = self.exchange_id
            self._check_exchange_id(event.exchange_id)
            self.exchange_id = event.exchange_id
            if self.previous == PENDING_CREATE:
                # The create ack while cancelling: if the cancel is rejected, the order is open.
                self.previous = OPEN
            if rule[1] is not None:
                after = rule[1]
            elif known is None:
                after = before  # first ack in a state that stays: applied, it brought the id
            else:
                return ignored("duplicate_ack")

        elif what == FILL:
            self._add_fill(event)
            if before in (CANCELED, EXPIRED):
                self.late_fills += 1
            if before == PENDING_CANCEL:
                # A rejected cancel must come back to an order known to have traded.
                self.previous = PARTIALLY_FILLED
            after = FILLED if self.filled >= self.quantity else rule[1]

        else:  # pragma: no cover - the table has no other kinds
            raise AssertionError(rule)

        if kind not in NOT_A_SIGN_OF_LIFE:
            self.not_found = 0
        self.state = after
        if after != PENDING_CANCEL:
            self.previous = None
        return Outcome(True, before, after)

    def _check_exchange_id(self, exchange_id: str) -> None:
        if self.exchange_id is not None and self.exchange_id != exchange_id:
            raise ModelExchangeIdConflict(
                f"order {self.client_id}: acked as exchange id {exchange_id!r} but already known as {self.exchange_id!r}"
            )

    def _add_fill(self, event: Event) -> None:
        """Validate everything first, so a bad fill changes nothing."""
        if not event.trade_id:
            raise ModelBadInput(f"order {self.client_id}: bad event: fill without a trade id")
        if event.qty <= 0:
            raise ModelBadInput(f"order {self.client_id}: bad event: fill quantity must be positive")
        if event.price <= 0:
            raise ModelBadInput(f"order {self.client_id}: bad event: fill price must be positive")
        filled = self.filled + event.qty
        cost = self.cost + event.price * event.qty
        slot = None
        for entry in self.fees:
            if entry[0] == event.fee_asset:
                slot = entry
                break
        fee_total = (slot[1] if slot is not None else 0) + event.fee
        if filled > I64_MAX or cost > I128_MAX or not I64_MIN <= fee_total <= I64_MAX:
            raise ModelBadInput(f"order {self.client_id}: filled quantity or cost overflows")

        self.filled = filled
        self.cost = cost
        if slot is not None:
            slot[1] = fee_total
        elif event.fee != 0 or event.fee_asset != "":
            self.fees.append([event.fee_asset, fee_total])
        self.trade_ids.add(event.trade_id)


# --- the set of orders ---------------------------------------------------------------------


class OrderModel:
    """Orders by client id, found also by exchange id; the model of mixmaker._core.OrderSet."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.by_exchange: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.orders)

    def add(self, client_id: str, symbol: str, side: str, price: int, quantity: int, lost_after: int = 3) -> None:
        order = Order(client_id, symbol, side, price, quantity, lost_after)
        if client_id in self.orders:
            raise ModelBadInput(f"client order id {client_id!r} is already in use")
        self.orders[client_id] = order

    def get(self, client_id: str) -> Optional[Order]:
        return self.orders.get(client_id)

    def view(self, client_id: str) -> Optional[dict]:
        order = self.orders.get(client_id)
        return None if order is None else order.view()

    def client_id_of(self, exchange_id: str) -> Optional[str]:
        return self.by_exchange.get(exchange_id)

    def apply(self, client_id, event, exchange_id=None, trade_id=None, price=0, qty=0, fee=0, fee_asset="", is_maker=False) -> Outcome:
        ev = make_event(event, exchange_id, trade_id, price, qty, fee, fee_asset, is_maker)
        return self._apply(client_id, ev)

    def _apply(self, client_id: str, ev: Event) -> Outcome:
        order = self.orders.get(client_id)
        if order is None:
            raise ModelUnknownOrder(f"no order with id {client_id!r}")
        owner = self.by_exchange.get(ev.exchange_id) if ev.kind == "accepted" else None
        if owner is not None and owner != client_id:
            # One exchange id, one order: otherwise fills would land on the wrong one.
            raise ModelExchangeIdConflict(f"order {client_id}: exchange id {ev.exchange_id!r} belongs to order {owner}")
        had_id = order.exchange_id is not None
        out = order.apply(ev)
        if not had_id and order.exchange_id is not None:
            # The first ack makes the order findable by its exchange id.
            self.by_exchange[order.exchange_id] = client_id
        return out

    def apply_many(self, updates: Iterable[tuple]) -> list[Outcome]:
        """Like OrderSet.apply_many: items (client_id or None, event, exchange_id, trade_id,
        price, qty, fee, fee_asset, is_maker); with no client id the order is found by exchange
        id. A malformed item raises before anything is applied; an item's error is reported in
        its Outcome and the rest go on."""
        items = []
        for i, (cid, event, eid, tid, price, qty, fee, fee_asset, is_maker) in enumerate(updates):
            if cid is None and eid is None:
                raise ModelEventFormat(f"update {i}: needs a client_id or an exchange_id")
            try:
                ev = make_event(event, eid, tid, price, qty, fee, fee_asset, is_maker)
            except ModelEventFormat as e:
                raise ModelEventFormat(f"update {i}: {e}") from None
            items.append((cid, eid, ev))
        outcomes = []
        for cid, eid, ev in items:
            try:
                if cid is None:
                    cid = self.by_exchange.get(eid)
                    if cid is None:
                        raise ModelUnknownOrder(f"no order with id {eid!r}")
                outcomes.append(self._apply(cid, ev))
            except ModelError as e:
                outcomes.append(Outcome(False, error=e.rust_name, message=str(e)))
        return outcomes

    def exposure(self, symbol: str) -> dict:
        """Same fields as mixmaker._core.Exposure: what may still trade in `symbol`."""
        x = {"buy_qty": 0, "sell_qty": 0, "buy_notional": 0, "sell_notional": 0, "orders": 0}
        for o in self.orders.values():
            if o.symbol != symbol or not o.is_live:
                continue
            rem = o.remaining
            x[o.side + "_qty"] += rem
            x[o.side + "_notional"] += rem * o.price
            x["orders"] += 1
        return x
