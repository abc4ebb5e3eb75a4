"""Price-time-priority matching, transport-free: orders, fills, fees and locked funds in Decimal.

One `MatchingEngine` holds every symbol's book and every account. Other market participants
(a recorded feed or the synthetic generator) act through the unlimited `MARKET` account:
`set_market_level` makes their resting size at a price what the feed says, and `market_trade`
replays a print as an IOC order, so our resting orders fill by queue position against real flow.

The public book (all owners, aggregated per price) keeps an update id: every operation that
changes a level advances it by one, and `take_diff` returns the changed levels since the last
diff as one Binance-style event with `U = previous u + 1`.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from mixmaker.sim.exchange.accounts import MARKET, ZERO, Accounts
from mixmaker.sim.exchange.errors import (
    BadParameter,
    DuplicateOrder,
    FilterFailure,
    OrderDoesNotExist,
    UnknownOrderCancel,
    UnknownSymbol,
    WouldTake,
)

BUY, SELL = "BUY", "SELL"
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class SymbolRules:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    min_notional: Decimal = Decimal("5")

    def check(self, price: Decimal | None, qty: Decimal) -> None:
        """Binance's PRICE_FILTER, LOT_SIZE and NOTIONAL filters."""
        if price is not None and (not self.min_price <= price <= self.max_price or price % self.tick_size):
            raise FilterFailure("Filter failure: PRICE_FILTER")
        if not self.min_qty <= qty <= self.max_qty or qty % self.step_size:
            raise FilterFailure("Filter failure: LOT_SIZE")
        if price is not None and price * qty < self.min_notional:
            raise FilterFailure("Filter failure: NOTIONAL")


@dataclass
class Order:
    order_id: int
    client_order_id: str
    account: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: Decimal  # 0 for MARKET orders
    orig_qty: Decimal
    time_ms: int
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_ms: int = 0
    locked: Decimal = ZERO  # funds still reserved for this order (quote for buys, base for sells)
    orig_client_order_id: str = ""  # set when a cancel names the order by client id

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class Fill:
    """One side of a trade, as the account that owns the order sees it."""

    trade_id: int
    order_id: int
    account: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time_ms: int


@dataclass(frozen=True)
class OrderUpdate:
    """One Binance `executionReport`: the order as it stands after `execution` happened."""

    order: Order  # a copy, frozen at the time of the event
    execution: str  # NEW, TRADE, CANCELED, EXPIRED, TRADE_PREVENTION (self-trade prevention)
    fill: Fill | None = None


@dataclass(frozen=True)
class PublicTrade:
    trade_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    time_ms: int
    buyer_is_maker: bool


@dataclass(frozen=True)
class Diff:
    symbol: str
    first_id: int  # U
    last_id: int  # u
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


@dataclass
class Outcome:
    """What one operation did: the order it concerned, its fills, and every order/balance change."""

    order: Order | None = None
    fills: list[Fill] = field(default_factory=list)
    updates: list[OrderUpdate] = field(default_factory=list)
    balances: dict[str, list[str]] = field(default_factory=dict)  # account -> assets changed


class BookSide:
    """Resting orders of one side: price levels (sorted keys) each holding a FIFO queue."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.queues: dict[Decimal, deque[Order]] = {}
        self.qty: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []  # ascending

    def best(self) -> Decimal | None:
        if not self._prices:
            return None
        return self._prices[-1] if self.is_bid else self._prices[0]

    def prices(self) -> Iterator[Decimal]:
        """Best first."""
        return reversed(self._prices) if self.is_bid else iter(self._prices)

    def add(self, order: Order) -> None:
        if order.price not in self.queues:
            bisect.insort(self._prices, order.price)
            self.queues[order.price] = deque()
            self.qty[order.price] = ZERO
        self.queues[order.price].append(order)
        self.qty[order.price] += order.remaining

    def remove(self, order: Order, qty: Decimal) -> None:
        """Take `order` (whose unfilled size on the book is `qty`) off its level."""
        queue = self.queues[order.price]
        queue.remove(order)
        self.shrink(order.price, qty)

    def shrink(self, price: Decimal, qty: Decimal) -> None:
        self.qty[price] -= qty
        if not self.queues[price]:
            del self.queues[price], self.qty[price]
            del self._prices[bisect.bisect_left(self._prices, price)]

    def crosses(self, price: Decimal | None, limit: Decimal | None) -> bool:
        """Would a taker with `limit` (None: market) trade against this side's level `price`?"""
        if price is None:
            return False
        if limit is None:
            return True
        return price >= limit if self.is_bid else price <= limit


class Book:
    def __init__(self) -> None:
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.update_id = 0
        self.published_id = 0  # `u` of the last diff taken
        self.pending: dict[tuple[bool, Decimal], None] = {}  # levels changed since the last diff
        self.dirty = False

    def side(self, side: str) -> BookSide:
        return self.bids if side == BUY else self.asks

    def touch(self, is_bid: bool, price: Decimal) -> None:
        self.pending[(is_bid, price)] = None
        self.dirty = True

    def level_qty(self, is_bid: bool, price: Decimal) -> Decimal:
        return (self.bids if is_bid else self.asks).qty.get(price, ZERO)


class MatchingEngine:
    def __init__(
        self,
        rules: Iterable[SymbolRules],
        accounts: Accounts | None = None,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
    ) -> None:
        self.rules = {r.symbol: r for r in rules}
        self.accounts = accounts or Accounts()
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.books = {s: Book() for s in self.rules}
        self.orders: dict[int, Order] = {}  # every non-market order ever accepted
        self.fills: dict[str, list[Fill]] = {}  # per account, in trade order
        self.public_trades: dict[str, deque[PublicTrade]] = {s: deque(maxlen=10_000) for s in self.rules}
        self._open_by_client_id: dict[tuple[str, str], int] = {}  # open orders of real accounts
        self._last_by_client_id: dict[tuple[str, str, str], int] = {}
        self._next_order_id = 1
        self._next_trade_id = 1
        self._history_levels = 0  # see keep_history
        self._history: dict[str, OrderedDict[int, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]]] = {}
        self._history_max = 0

    # ---- orders ------------------------------------------------------------------------------

    def submit(
        self,
        account: str,
        symbol: str,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        now_ms: int = 0,
    ) -> Outcome:
        rules = self.get_rules(symbol)
        limit = self._validate(account, rules, side, order_type, qty, price, time_in_force)
        tif = time_in_force or "GTC"
        if client_order_id and (account, client_order_id) in self._open_by_client_id:
            raise DuplicateOrder()
        book = self.books[symbol]
        opposite = book.asks if side == BUY else book.bids
        if order_type == "LIMIT_MAKER" and opposite.crosses(opposite.best(), limit):
            raise WouldTake()
        order_id = self._next_order_id
        order = Order(
            order_id=order_id,
            client_order_id=client_order_id or f"sim{order_id:012d}",
            account=account,
            symbol=symbol,
            side=side,
            type=order_type,
            time_in_force=tif if order_type == "LIMIT" else "GTC",
            price=limit if limit is not None else ZERO,
            orig_qty=qty,
            time_ms=now_ms,
            update_ms=now_ms,
        )
        self._reserve(order, rules, opposite, limit)  # may raise: nothing is changed before it
        self._next_order_id += 1
        out = Outcome(order=order)
        if account != MARKET:
            self.orders[order_id] = order
            self._last_by_client_id[(account, symbol, order.client_order_id)] = order_id
            self._note(out, order, "NEW")
        if tif == "FOK" and self._takeable(opposite, account, limit) < qty:
            self._close(order, "EXPIRED", out)
            return self._finish(book, out)
        self._match(order, rules, book, opposite, limit, out)
        if order.remaining == 0:
            self._release(order, rules)
        elif order_type == "MARKET" or tif != "GTC":
            self._close(order, "EXPIRED", out)
        else:
            book.side(side).add(order)
            book.touch(side == BUY, order.price)
            if account != MARKET:
                self._open_by_client_id[(account, order.client_order_id)] = order_id
        return self._finish(book, out)

    def cancel(
        self,
        account: str,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
        now_ms: int = 0,
    ) -> Outcome:
        try:
            order = self.get_order(account, symbol, order_id, client_order_id)
        except OrderDoesNotExist:
            raise UnknownOrderCancel() from None
        if not order.is_open:
            raise UnknownOrderCancel()
        book = self.books[symbol]
        out = Outcome(order=order)
        order.update_ms = now_ms
        order.orig_client_order_id = order.client_order_id
        self._unrest(book, order)
        self._close(order, "CANCELED", out)
        return self._finish(book, out)

    def cancel_all(self, account: str, symbol: str, now_ms: int = 0) -> list[Outcome]:
        return [self.cancel(account, symbol, o.order_id, now_ms=now_ms) for o in self.open_orders(account, symbol)]

    def get_order(
        self, account: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        if order_id is None and client_order_id is None:
            raise BadParameter("Param orderId or origClientOrderId must be sent, but both were empty/null!")
        self.get_rules(symbol)
        if order_id is None:
            order_id = self._last_by_client_id.get((account, symbol, client_order_id or ""))
        order = self.orders.get(order_id) if order_id is not None else None
        if order is None or order.account != account or order.symbol != symbol:
            raise OrderDoesNotExist()
        if client_order_id is not None and order.client_order_id != client_order_id:
            raise OrderDoesNotExist()
        return order

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            self.get_rules(symbol)
        # `_open_by_client_id` holds exactly the open orders, so this never scans the history.
        found = (self.orders[i] for (owner, _), i in self._open_by_client_id.items() if owner == account)
        return sorted((o for o in found if symbol is None or o.symbol == symbol), key=lambda o: o.order_id)

    def my_trades(self, account: str, symbol: str) -> list[Fill]:
        self.get_rules(symbol)
        return [f for f in self.fills.get(account, ()) if f.symbol == symbol]

    # ---- other participants ------------------------------------------------------------------

    def set_market_level(self, symbol: str, side: str, price: Decimal, qty: Decimal, now_ms: int = 0) -> Outcome:
        """Make other participants' resting size at `price` equal `qty` (a feed's absolute level).

        Growth joins the back of the queue (and trades first if it crosses our orders); shrinkage
        is taken from the newest market orders, so our place in the queue never improves unearned.
        """
        book = self.books[self.get_rules(symbol).symbol]
        book_side = book.side(side)
        queue = book_side.queues.get(price, deque())
        current = sum((o.remaining for o in queue if o.account == MARKET), ZERO)
        if qty > current:
            return self.submit(MARKET, symbol, side, "LIMIT", qty - current, price, "GTC", now_ms=now_ms)
        excess = current - qty
        for order in [o for o in reversed(queue) if o.account == MARKET]:
            if excess <= 0:
                break
            cut = min(excess, order.remaining)
            excess -= cut
            if cut == order.remaining:
                book_side.remove(order, cut)
            else:
                order.orig_qty -= cut
                book_side.shrink(price, cut)
            book.touch(side == BUY, price)
        return self._finish(book, Outcome())

    def market_trade(self, symbol: str, price: Decimal, qty: Decimal, buyer_is_maker: bool, now_ms: int = 0) -> Outcome:
        """A print by other participants: an IOC taker that fills resting orders in priority."""
        taker_side = SELL if buyer_is_maker else BUY
        return self.submit(MARKET, symbol, taker_side, "LIMIT", qty, price, "IOC", now_ms=now_ms)

    # ---- public book -------------------------------------------------------------------------

    def depth(self, symbol: str, limit: int = 100) -> tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        book = self.books[self.get_rules(symbol).symbol]
        self._remember(symbol, book)  # a snapshot is a state a client can sync to
        return book.update_id, _levels(book.bids, limit), _levels(book.asks, limit)

    def keep_history(self, levels: int, max_entries: int = 100_000) -> None:
        """From now on remember the top `levels` of every state a client can see (each snapshot
        and each diff's result), so a test can check a client's book at any update id it reports."""
        self._history_levels = levels
        self._history = {s: OrderedDict() for s in self.rules}
        self._history_max = max_entries

    def book_at(self, symbol: str, update_id: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]] | None:
        """The top levels (bids, asks) as they stood at `update_id`, if it was seen and kept."""
        seen = self._history.get(symbol)
        return seen.get(update_id) if seen is not None else None

    def take_diff(self, symbol: str) -> Diff | None:
        """Changed levels since the last diff (absolute sizes, 0 = gone), or None if none changed."""
        book = self.books[symbol]
        if not book.pending:
            return None
        bids = sorted(((p, book.level_qty(True, p)) for b, p in book.pending if b), reverse=True)
        asks = sorted((p, book.level_qty(False, p)) for b, p in book.pending if not b)
        diff = Diff(symbol, book.published_id + 1, book.update_id, bids, asks)
        book.published_id = book.update_id
        book.pending.clear()
        self._remember(symbol, book)
        return diff

    def _remember(self, symbol: str, book: Book) -> None:
        if not self._history_levels or book.update_id in self._history[symbol]:
            return
        kept = self._history[symbol]
        kept[book.update_id] = (_levels(book.bids, self._history_levels), _levels(book.asks, self._history_levels))
        if len(kept) > self._history_max:
            kept.popitem(last=False)

    def take_public_trades(self, symbol: str) -> list[PublicTrade]:
        trades = list(self.public_trades[symbol])
        self.public_trades[symbol].clear()
        return trades

    # ---- internals ---------------------------------------------------------------------------

    def get_rules(self, symbol: str) -> SymbolRules:
        rules = self.rules.get(symbol)
        if rules is None:
            raise UnknownSymbol()
        return rules

    def _validate(
        self,
        account: str,
        rules: SymbolRules,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None,
        tif: str | None,
    ) -> Decimal | None:
        """The order's limit price (None for MARKET) once its parameters pass."""
        if side not in (BUY, SELL):
            raise BadParameter("Invalid side.")
        if order_type not in ORDER_TYPES:
            raise BadParameter("Invalid orderType.")
        if order_type == "MARKET":
            if price is not None:
                raise BadParameter("Parameter 'price' sent when not required.")
        elif price is None:
            raise BadParameter("Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        if order_type == "LIMIT" and tif not in TIME_IN_FORCE:
            raise BadParameter("Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
        if qty <= 0 or (price is not None and price <= 0):
            raise BadParameter("Illegal quantity or price.")
        if account != MARKET:
            rules.check(price, qty)
        return price

    def _reserve(self, order: Order, rules: SymbolRules, opposite: BookSide, limit: Decimal | None) -> None:
        if order.account in self.accounts.unlimited:
            return
        if order.side == SELL:
            order.locked = order.orig_qty
            self.accounts.lock(order.account, rules.base, order.locked)
            return
        if limit is not None:
            order.locked = limit * order.orig_qty
        else:  # a market buy reserves what walking the book would cost now
            order.locked = self._cost(opposite, order.account, order.orig_qty)
        self.accounts.lock(order.account, rules.quote, order.locked)

    def _release(self, order: Order, rules: SymbolRules) -> None:
        if order.locked:
            asset = rules.quote if order.side == BUY else rules.base
            self.accounts.unlock(order.account, asset, order.locked)
            order.locked = ZERO

    def _match(
        self, taker: Order, rules: SymbolRules, book: Book, opposite: BookSide, limit: Decimal | None, out: Outcome
    ) -> None:
        while taker.remaining > 0:
            price = opposite.best()
            if not opposite.crosses(price, limit):
                return
            assert price is not None
            maker = opposite.queues[price][0]
            if maker.account == taker.account and maker.account != MARKET:
                # Binance's default self-trade prevention, EXPIRE_MAKER.
                self._unrest(book, maker)
                self._close(maker, "EXPIRED_IN_MATCH", out)
                continue
            qty = min(taker.remaining, maker.remaining)
            self._trade(taker, maker, rules, price, qty, out)
            if maker.remaining:
                opposite.shrink(price, qty)
            else:
                opposite.remove(maker, qty)
            book.touch(opposite.is_bid, price)
            if maker.remaining == 0:
                self._release(maker, rules)
                self._open_by_client_id.pop((maker.account, maker.client_order_id), None)

    def _trade(self, taker: Order, maker: Order, rules: SymbolRules, price: Decimal, qty: Decimal, out: Outcome) -> None:
        buyer, seller = (taker, maker) if taker.side == BUY else (maker, taker)
        quote = price * qty
        base_fee = qty * self._fee_rate(buyer, buyer is maker)
        quote_fee = quote * self._fee_rate(seller, seller is maker)
        locks = self.accounts.unlimited
        if buyer.account not in locks:
            reserved = buyer.price * qty if buyer.type != "MARKET" else quote
            buyer.locked -= reserved
            self.accounts.unlock(buyer.account, rules.quote, reserved - quote)
        if seller.account not in locks:
            seller.locked -= qty
        self.accounts.pay(buyer.account, seller.account, rules.quote, quote, quote_fee, buyer.account not in locks)
        self.accounts.pay(seller.account, buyer.account, rules.base, qty, base_fee, seller.account not in locks)
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        now = taker.update_ms
        for order, fee, asset in ((buyer, base_fee, rules.base), (seller, quote_fee, rules.quote)):
            order.executed_qty += qty
            order.cum_quote += quote
            order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
            order.update_ms = now
            if order.account == MARKET:
                continue
            fill = Fill(trade_id, order.order_id, order.account, order.symbol, order.side, price, qty, quote, fee, asset, order is maker, now)
            self.fills.setdefault(order.account, []).append(fill)
            if order is taker:
                out.fills.append(fill)
            self._note(out, order, "TRADE", fill)
        self.public_trades[rules.symbol].append(PublicTrade(trade_id, rules.symbol, price, qty, now, buyer is maker))

    def _fee_rate(self, order: Order, is_maker: bool) -> Decimal:
        if order.account == MARKET:
            return ZERO
        return self.maker_fee if is_maker else self.taker_fee

    def _takeable(self, side: BookSide, account: str, limit: Decimal | None) -> Decimal:
        total = ZERO
        for price in side.prices():
            if not side.crosses(price, limit):
                break
            total += sum((o.remaining for o in side.queues[price] if o.account != account), ZERO)
        return total

    def _cost(self, side: BookSide, account: str, qty: Decimal) -> Decimal:
        cost = ZERO
        for price in side.prices():
            for order in side.queues[price]:
                if order.account == account:
                    continue
                take = min(qty, order.remaining)
                cost += take * price
                qty -= take
                if qty == 0:
                    return cost
        return cost

    def _unrest(self, book: Book, order: Order) -> None:
        book.side(order.side).remove(order, order.remaining)
        book.touch(order.side == BUY, order.price)
        self._open_by_client_id.pop((order.account, order.client_order_id), None)

    def _close(self, order: Order, status: str, out: Outcome) -> None:
        order.status = status
        self._release(order, self.rules[order.symbol])
        if order.account != MARKET:
            self._note(out, order, "TRADE_PREVENTION" if status == "EXPIRED_IN_MATCH" else status)

    def _note(self, out: Outcome, order: Order, execution: str, fill: Fill | None = None) -> None:
        out.updates.append(OrderUpdate(dataclasses.replace(order), execution, fill))

    def _finish(self, book: Book, out: Outcome) -> Outcome:
        if book.dirty:
            book.update_id += 1
            book.dirty = False
        for account, asset in self.accounts.take_touched():
            if account != MARKET:
                out.balances.setdefault(account, []).append(asset)
        return out


def _levels(side: BookSide, limit: int) -> list[tuple[Decimal, Decimal]]:
    out: list[tuple[Decimal, Decimal]] = []
    for price in side.prices():
        if len(out) == limit:
            break
        out.append((price, side.qty[price]))
    return out
