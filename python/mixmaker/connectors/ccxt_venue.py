"""A ccxt async exchange as an `OrderVenue` (what the order tracker drives), plus balances and
market rules, in exact numbers.

- ccxt is told to hand numbers back as strings (`exchange.number = str`), so nothing goes
  through a float: prices and sizes become the market's scaled integers (`MarketScale`),
  balances `Decimal`. A value that does not sit on the scale is an error, not a rounding.
- Every REST request waits in the account's `RateLimiter` (see `ccxt_routing`).
- ccxt's exceptions become the tracker's: `OrderNotFound` -> `OrderNotFoundError`; a refused
  order, or a create/cancel answered 429/418 (refused unexecuted) -> `OrderRejectedError`;
  anything whose outcome is unknown (network, timeout, 5xx) -> `VenueUnavailableError`, which
  the tracker resolves by asking again.
- Symbols are the venue's ids (`BTCUSDT`), as the tracker journals them.
- Trade history is read to its end (`mixmaker.orders.trade_pages`): on Binance by `fromId` and
  `orderId`, elsewhere by time.
- On Binance a create is signed with the tracker's `timestamp_ms` and this venue's `recvWindow`
  exactly, and never re-sent with another timestamp: past that window an order the venue does
  not know can never appear (see `RequestWindowVenue`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Awaitable, Callable, TypeVar

import ccxt.async_support as ccxt

from mixmaker.connectors.ccxt_routing import QUEUE_DEADLINE_S
from mixmaker.connectors.limiter import RateLimiter, RequestNotSentError
from mixmaker.orders.errors import OrderNotFoundError, OrderRejectedError, VenueError, VenueUnavailableError
from mixmaker.orders.trade_pages import MAX_PAGE, MAX_PAGES, TradePage, trades_by_id, trades_by_time
from mixmaker.orders.venue import OrderReport, OrderRequest, TradeReport, VenueStatus

T = TypeVar("T")

#: Fees are integers in 10^-12 of their asset: venues quote fees to 8 decimals, but a fee rate
#: times an exact notional can have more (fee totals are i64: up to 9.2 million of an asset).
FEE_DECIMALS = 12
#: ccxt ids of venues whose trade history pages by trade id (`fromId`, `orderId`) and whose
#: signed requests carry `timestamp` + `recvWindow` (Binance spot's REST).
_BINANCE_LIKE = frozenset({"binance", "binanceus"})
#: Binance's recvWindow when none is sent.
_DEFAULT_RECV_WINDOW_MS = 5000


class _ClockRefused(Exception):
    """Internal: a request was refused for its timestamp and may be sent again once."""


class MarketScaleError(ValueError):
    """A number from the venue or the caller does not fit the market's scale."""


@dataclass(frozen=True, slots=True)
class MarketScale:
    """How one market's prices and sizes map to integers: price = int / 10**price_decimals."""

    symbol: str  # the venue's id, e.g. BTCUSDT
    unified: str  # ccxt's, e.g. BTC/USDT
    base: str
    quote: str
    price_decimals: int
    size_decimals: int
    tick: int  # price step, in price units
    lot: int  # size step, in size units
    min_size: int
    min_notional: Decimal  # in the quote asset

    def price(self, v: Any) -> int:
        return to_units(v, self.price_decimals, f"{self.symbol} price")

    def size(self, v: Any) -> int:
        return to_units(v, self.size_decimals, f"{self.symbol} size")

    def price_str(self, units: int) -> str:
        return from_units(units, self.price_decimals)

    def size_str(self, units: int) -> str:
        return from_units(units, self.size_decimals)


def exact(v: Any, what: str) -> Decimal:
    """A venue number as an exact Decimal. Strings are exact; a float (a ccxt path that ignores
    `number = str`) is taken by its shortest repr, which is the decimal the venue sent."""
    if isinstance(v, Decimal):
        return v
    if isinstance(v, bool) or v is None:
        raise MarketScaleError(f"{what}: not a number: {v!r}")
    try:
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v))
    except InvalidOperation:
        raise MarketScaleError(f"{what}: not a number: {v!r}") from None
    if not d.is_finite():
        raise MarketScaleError(f"{what}: not a finite number: {v!r}")
    return d


def to_units(v: Any, decimals: int, what: str) -> int:
    scaled = exact(v, what).scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise MarketScaleError(f"{what}: {v!r} has more than {decimals} decimals")
    return int(scaled)


def from_units(units: int, decimals: int) -> str:
    return format(Decimal(units).scaleb(-decimals), "f")


def _decimals(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)


def market_scale(market: dict[str, Any]) -> MarketScale:
    """The scale of a loaded ccxt market (ccxt's TICK_SIZE precision mode: steps, not digits)."""
    prec, limits = market.get("precision") or {}, market.get("limits") or {}
    what = market.get("id", "?")
    tick, lot = exact(prec.get("price"), f"{what} tick"), exact(prec.get("amount"), f"{what} lot")
    if tick <= 0 or lot <= 0:
        raise MarketScaleError(f"{what}: tick and lot must be positive, got {tick} / {lot}")
    pd, sd = _decimals(tick), _decimals(lot)
    min_amount = (limits.get("amount") or {}).get("min")
    min_cost = (limits.get("cost") or {}).get("min")
    return MarketScale(
        symbol=market["id"], unified=market["symbol"], base=market["base"], quote=market["quote"],
        price_decimals=pd, size_decimals=sd, tick=to_units(tick, pd, f"{what} tick"), lot=to_units(lot, sd, f"{what} lot"),
        min_size=to_units(min_amount, sd, f"{what} min size") if min_amount is not None else 0,
        min_notional=exact(min_cost, f"{what} min notional") if min_cost is not None else Decimal(0),
    )


@dataclass(frozen=True, slots=True)
class Balance:
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class DepositAddress:
    asset: str
    address: str
    tag: str | None
    network: str | None


@dataclass(frozen=True, slots=True)
class Transfer:
    """A deposit or a withdrawal as the venue reports it. `request_id` is our idempotency key
    (a withdrawal's `withdrawOrderId`), None for deposits."""

    exchange_id: str
    request_id: str | None
    asset: str
    amount: Decimal
    fee: Decimal
    address: str | None
    status: str  # ccxt's: pending, ok, failed, canceled
    txid: str | None
    time_ms: int


def _transfer(t: dict[str, Any]) -> Transfer:
    info, fee = t.get("info") or {}, t.get("fee") or {}
    return Transfer(
        exchange_id=str(t["id"]), request_id=info.get("withdrawOrderId") or None, asset=t["currency"],
        amount=exact(t["amount"], "transfer amount"), fee=exact(fee.get("cost") or "0", "transfer fee"),
        address=t.get("address"), status=t.get("status") or "pending", txid=t.get("txid") or None,
        time_ms=int(t.get("timestamp") or 0),
    )


_NOT_FOUND = (ccxt.OrderNotFound,)
# Refused for good: the order was not placed (or the cancel did not happen), and asking again
# would get the same answer.
_REFUSED = (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.AuthenticationError, ccxt.PermissionDenied,
            ccxt.BadRequest, ccxt.BadSymbol, ccxt.OperationRejected)


class CcxtVenue:
    """One venue account over a ccxt async exchange whose requests go through `limiter`."""

    def __init__(self, exchange: Any, limiter: RateLimiter, *, name: str | None = None, queue_timeout_s: float = 3.0) -> None:
        """`queue_timeout_s`: how long a request may wait in the rate limiter before it is given
        up unsent (keep it below the tracker's `request_timeout`, so the tracker hears "not sent",
        a certainty, instead of a timeout, a doubt)."""
        exchange.number = str  # exact numbers: see the module note
        # Signed requests carry our clock: ccxt measures the venue's offset in load_markets and
        # corrects every timestamp by it; `_call` measures again when the venue says -1021.
        exchange.options["adjustForTimeDifference"] = True
        self.exchange = exchange
        self.queue_timeout_s = queue_timeout_s
        self.clock_resyncs = 0
        self.limiter = limiter
        self.name = name or exchange.id
        self.markets: dict[str, MarketScale] = {}
        self.binance_like = exchange.id in _BINANCE_LIKE
        self.trade_page_limit = MAX_PAGE if self.binance_like else 100
        self.max_trade_pages = MAX_PAGES

    @property
    def recv_window_ms(self) -> int | None:
        """The recvWindow every signed request carries (ccxt's option), None where the venue has none."""
        if not self.binance_like:
            return None
        return int(self.exchange.options.get("recvWindow") or _DEFAULT_RECV_WINDOW_MS)

    def clock_ms(self) -> int:
        """The venue's clock as we track it: ours less the offset ccxt measured."""
        return int(self.exchange.milliseconds()) - self.time_difference_ms

    async def load_markets(self) -> dict[str, MarketScale]:
        markets = await self._call(lambda: self.exchange.load_markets())
        self.markets = {m["id"]: market_scale(m) for m in markets.values() if m.get("spot", True)}
        return self.markets

    def market(self, symbol: str) -> MarketScale:
        try:
            return self.markets[symbol]
        except KeyError:
            raise MarketScaleError(f"{self.name}: unknown market {symbol!r} (load_markets first?)") from None

    # ------------------------------------------------------------------ OrderVenue
    async def create_order(self, req: OrderRequest) -> OrderReport:
        m = self.market(req.symbol)
        params: dict[str, Any] = {"clientOrderId": req.client_id}
        pinned = req.timestamp_ms is not None and self.recv_window_ms is not None
        if pinned:
            # Signed with exactly the journaled time and window (ccxt's own come second).
            params.update(timestamp=req.timestamp_ms, recvWindow=self.recv_window_ms)
        o = await self._call(lambda: self.exchange.create_order(
            m.unified, "limit", req.side, m.size_str(req.quantity), m.price_str(req.price), params),
            acts=True, resend=not pinned)
        return self._report(o, m)

    async def cancel_order(self, symbol: str, client_id: str, exchange_id: str | None) -> OrderReport:
        m = self.market(symbol)
        params = {} if exchange_id else {"clientOrderId": client_id}
        o = await self._call(lambda: self.exchange.cancel_order(exchange_id or "", m.unified, params), acts=True)
        return self._report(o, m)

    async def fetch_order(self, symbol: str, client_id: str) -> OrderReport:
        m = self.market(symbol)
        o = await self._call(lambda: self.exchange.fetch_order("", m.unified, {"clientOrderId": client_id}))
        return self._report(o, m)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        unified = self.market(symbol).unified if symbol else None
        orders = await self._call(lambda: self.exchange.fetch_open_orders(unified))
        return [self._report(o, self._market_of(o)) for o in orders]

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[TradeReport]:
        """Every trade of ours in `symbol` at or after `since_ms` (None: all), all pages."""
        m = self.market(symbol)
        what = f"{self.name} {symbol} trades"
        if self.binance_like:
            return await trades_by_id(lambda q: self._trade_page(m, q), since_ms=since_ms, now_ms=self.clock_ms,
                                      limit=self.trade_page_limit, max_pages=self.max_trade_pages, what=what)
        return await trades_by_time(lambda q: self._trade_page(m, q), since_ms=since_ms,
                                    limit=self.trade_page_limit, max_pages=self.max_trade_pages, what=what)

    async def fetch_order_trades(self, symbol: str, exchange_id: str, since_ms: int | None = None) -> list[TradeReport]:
        """Every trade of one order: by `orderId` on Binance, else the symbol's since `since_ms`."""
        if not self.binance_like:
            return [t for t in await self.fetch_my_trades(symbol, since_ms) if t.exchange_id == exchange_id]
        m = self.market(symbol)
        return await trades_by_id(lambda q: self._trade_page(m, q), order_id=exchange_id, now_ms=self.clock_ms,
                                  limit=self.trade_page_limit, max_pages=self.max_trade_pages,
                                  what=f"{self.name} {symbol} order {exchange_id} trades")

    async def _trade_page(self, m: MarketScale, q: TradePage) -> list[TradeReport]:
        params: dict[str, Any] = {}
        if q.from_id is not None:
            params["fromId"] = q.from_id
        if q.order_id is not None:
            params["orderId"] = q.order_id
        if q.end_ms is not None:
            params["endTime"] = q.end_ms
        trades = await self._call(lambda: self.exchange.fetch_my_trades(m.unified, q.start_ms, q.limit, params))
        return [self.trade_report(t, m) for t in trades]

    # ------------------------------------------------------------------ account
    async def fetch_balances(self) -> dict[str, Balance]:
        b = await self._call(lambda: self.exchange.fetch_balance())
        free, used = b.get("free") or {}, b.get("used") or {}
        return {asset: Balance(exact(free.get(asset) or "0", f"{asset} free"), exact(used.get(asset) or "0", f"{asset} locked"))
                for asset in sorted(set(free) | set(used))}

    # ------------------------------------------------------------------ funds
    async def deposit_address(self, asset: str, network: str | None = None) -> DepositAddress:
        params = {"network": network} if network else {}
        a = await self._call(lambda: self.exchange.fetch_deposit_address(asset, params))
        return DepositAddress(asset, a["address"], a.get("tag") or None, a.get("network") or network)

    async def deposits(self, asset: str | None = None, since_ms: int | None = None) -> list[Transfer]:
        return [_transfer(t) for t in await self._call(lambda: self.exchange.fetch_deposits(asset, since_ms))]

    async def withdrawals(self, asset: str | None = None, since_ms: int | None = None) -> list[Transfer]:
        return [_transfer(t) for t in await self._call(lambda: self.exchange.fetch_withdrawals(asset, since_ms))]

    async def find_withdrawal(self, asset: str, request_id: str) -> Transfer | None:
        rows = await self._call(lambda: self.exchange.fetch_withdrawals(asset, None, None, {"withdrawOrderId": request_id}))
        found = [t for t in map(_transfer, rows) if t.request_id == request_id]
        return found[0] if found else None

    async def withdraw(self, request_id: str, asset: str, amount: Decimal, address: str, *,
                       tag: str | None = None, network: str | None = None) -> Transfer:
        """Pays out at most once per `request_id` (the venue's `withdrawOrderId`): a request id
        the venue already has returns that withdrawal, and an unclear answer is settled by
        looking the id up, never by sending again. Raises OrderRejectedError if refused (nothing
        paid) and VenueUnavailableError if the outcome is still unknown: call again later with
        the same request id."""
        if not isinstance(amount, Decimal) or amount <= 0:
            raise ValueError(f"withdraw: amount must be a positive Decimal, got {amount!r}")
        if (done := await self.find_withdrawal(asset, request_id)) is not None:
            return done
        params: dict[str, Any] = {"withdrawOrderId": request_id}
        if network:
            params["network"] = network
        if tag:
            params["tag"] = tag
        try:
            await self._call(lambda: self.exchange.withdraw(asset, format(amount, "f"), address, params), acts=True)
        except VenueUnavailableError:
            pass  # it may have been paid: the lookup below says
        if (done := await self.find_withdrawal(asset, request_id)) is not None:
            return done
        raise VenueUnavailableError(f"{self.name}: withdrawal {request_id} not visible yet; ask again with the same id")

    # ------------------------------------------------------------------ conversions
    def market_of_unified(self, unified: str | None) -> MarketScale | None:
        """The market ccxt calls `unified` (e.g. BTC/USDT), or None if it is not loaded."""
        return next((m for m in self.markets.values() if m.unified == unified), None)

    def _market_of(self, o: dict[str, Any]) -> MarketScale:
        mid = (o.get("info") or {}).get("symbol")
        m = self.markets.get(mid) if mid else None
        m = m or self.market_of_unified(o.get("symbol"))
        if m is None:
            raise MarketScaleError(f"{self.name}: an order in an unknown market: {o.get('symbol')!r}")
        return m

    def _report(self, o: dict[str, Any], m: MarketScale) -> OrderReport:
        qty, filled = m.size(o.get("amount") or "0"), m.size(o.get("filled") or "0")
        return OrderReport(
            client_id=o.get("clientOrderId"), exchange_id=str(o["id"]), symbol=m.symbol, side=o["side"],
            status=_status(o.get("status"), filled, qty), price=m.price(o.get("price") or "0"),
            quantity=qty, filled=filled,
        )

    @staticmethod
    def trade_report(t: dict[str, Any], m: MarketScale) -> TradeReport:
        """A ccxt unified trade as the tracker's exact `TradeReport`."""
        fee = t.get("fee") or {}
        return TradeReport(
            trade_id=str(t["id"]), exchange_id=str(t["order"]), client_id=t.get("clientOrderId"), symbol=m.symbol,
            side=t["side"], price=m.price(t["price"]), qty=m.size(t["amount"]),
            fee=to_units(fee.get("cost") or "0", FEE_DECIMALS, f"{m.symbol} fee"), fee_asset=fee.get("currency") or "",
            is_maker=t.get("takerOrMaker") == "maker", time_ms=int(t.get("timestamp") or 0),
        )

    @property
    def time_difference_ms(self) -> int:
        """Our clock minus the venue's, as last measured."""
        return int(self.exchange.options.get("timeDifference") or 0)

    async def _call(self, make: Callable[[], Awaitable[T]], *, acts: bool = False, resend: bool = True) -> T:
        """`acts`: the request would change something (create, cancel). A 429/418 answer to it
        is definitive, not doubtful: the venue refused it without acting. `resend`: a request
        refused for its timestamp may go again with a new one (not a create whose timestamp
        the tracker journaled)."""
        try:
            return await self._translated(make, acts=acts)
        except _ClockRefused:
            # Refused for its timestamp (-1021), so not executed: measure the clock again and
            # send it once more.
            self.clock_resyncs += 1
            if not resend:
                # Refused either way; the next create is signed with the new offset.
                with contextlib.suppress(VenueError):
                    await self._translated(lambda: self.exchange.load_time_difference(), acts=False, clock_retry=False)
                raise OrderRejectedError(f"{self.name}: refused for its timestamp (-1021), not re-sent") from None
            await self._translated(lambda: self.exchange.load_time_difference(), acts=False, clock_retry=False)
            return await self._translated(make, acts=acts, clock_retry=False)

    async def _translated(self, make: Callable[[], Awaitable[T]], *, acts: bool, clock_retry: bool = True) -> T:
        """Runs `make`, turning ccxt's exceptions into the tracker's."""
        token = QUEUE_DEADLINE_S.set(self.queue_timeout_s)
        try:
            return await make()
        except RequestNotSentError as e:
            if acts:
                raise OrderRejectedError(str(e)) from None
            raise VenueUnavailableError(str(e)) from None
        except ccxt.InvalidNonce as e:  # ccxt files it under NetworkError; it is not a doubt
            if clock_retry:
                raise _ClockRefused from None
            if acts:
                raise OrderRejectedError(f"{self.name}: refused for its timestamp: {e}") from None
            raise VenueUnavailableError(f"{self.name}: refused for its timestamp: {e}") from None
        except _NOT_FOUND as e:
            raise OrderNotFoundError(f"{self.name}: {e}") from None
        except ccxt.DDoSProtection as e:
            if acts:
                raise OrderRejectedError(f"{self.name}: rate limited, not executed: {e}") from None
            raise VenueUnavailableError(f"{self.name}: rate limited: {e}") from None
        except ccxt.NetworkError as e:  # timeouts, 5xx: outcome unknown
            raise VenueUnavailableError(f"{self.name}: {type(e).__name__}: {e}") from None
        except _REFUSED as e:
            raise OrderRejectedError(f"{self.name}: {type(e).__name__}: {e}") from None
        except ccxt.BaseError as e:
            # Anything else ccxt cannot classify: unknown outcome, so the tracker asks again.
            raise VenueUnavailableError(f"{self.name}: {type(e).__name__}: {e}") from None
        finally:
            QUEUE_DEADLINE_S.reset(token)


def _status(status: str | None, filled: int, qty: int) -> VenueStatus:
    if status == "open":
        return "partially_filled" if filled > 0 else "open"
    if status == "closed":
        return "filled"
    if status in ("canceled", "expired", "rejected"):
        return status  # type: ignore[return-value]
    raise VenueError(f"unknown order status from ccxt: {status!r}")
