"""A ccxt async exchange as an `OrderVenue` (what the order tracker drives), plus balances and
market rules, in exact numbers.

- ccxt is told to hand numbers back as strings (`exchange.number = str`), so nothing goes
  through a float: prices and sizes become the market's scaled integers (`MarketRules`),
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
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import ccxt.async_support as ccxt

from mixmaker.connectors.account import Balance, DepositAddress, Transfer, VenueAccount
from mixmaker.connectors.ccxt_routing import QUEUE_DEADLINE_S
from mixmaker.connectors.limiter import RateLimiter, RequestNotSentError
from mixmaker.errors import MixmakerError
from mixmaker.markets import MarketRules, MarketRulesError
from mixmaker.money import AmountError, Rounding, decimals_of, exact_decimal, to_units
from mixmaker.orders.errors import OrderNotFoundError, OrderRejectedError, VenueError, VenueUnavailableError
from mixmaker.orders.protocol import FeeAmount, OrderReport, OrderRequest, Side, TradeReport, VenueStatus, fee_amount
from mixmaker.orders.trade_pages import MAX_PAGE, MAX_PAGES, TradePage, trades_by_id, trades_by_time

T = TypeVar("T")

#: ccxt ids of venues whose trade history pages by trade id (`fromId`, `orderId`) and whose
#: signed requests carry `timestamp` + `recvWindow` (Binance spot's REST).
_BINANCE_LIKE = frozenset({"binance", "binanceus"})
#: Binance's recvWindow when none is sent.
_DEFAULT_RECV_WINDOW_MS = 5000


class _ClockRefused(MixmakerError):
    """Internal: a request was refused for its timestamp and may be sent again once."""


def _text(v: Any, what: str) -> str | Decimal | int:
    """A venue number as exact text. ccxt hands strings back (`number = str`); a float (a ccxt
    path that ignores it) is taken by its shortest repr, which is the decimal the venue sent."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (str, Decimal, int)) and not isinstance(v, bool):
        return v
    raise MarketRulesError(f"{what}: not a number: {v!r}")


def exact(v: Any, what: str) -> Decimal:
    """A venue number as an exact Decimal (`money.exact_decimal`)."""
    try:
        return exact_decimal(_text(v, what), what=what)
    except AmountError as e:
        raise MarketRulesError(str(e)) from None


def fee_of(v: Any, m: MarketRules) -> FeeAmount:
    """A fee the venue reports for a trade in `m` (decimal text in the fee's asset)."""
    try:
        return fee_amount(_text(v, f"{m.symbol} fee"), what=f"{m.symbol} fee")
    except AmountError as e:
        raise MarketRulesError(str(e)) from None


def market_rules(market: dict[str, Any]) -> MarketRules:
    """The rules of a loaded ccxt market (ccxt's TICK_SIZE precision mode: steps, not digits)."""
    prec, limits = market.get("precision") or {}, market.get("limits") or {}
    what = market.get("id", "?")
    tick, lot = exact(prec.get("price"), f"{what} tick"), exact(prec.get("amount"), f"{what} lot")
    if tick <= 0 or lot <= 0:
        raise MarketRulesError(f"{what}: tick and lot must be positive, got {tick} / {lot}")
    pd, sd = decimals_of(tick), decimals_of(lot)
    min_amount = (limits.get("amount") or {}).get("min")
    min_cost = (limits.get("cost") or {}).get("min")
    try:
        return MarketRules(
            symbol=market["id"], unified=market["symbol"], base=market["base"], quote=market["quote"],
            price_decimals=pd, size_decimals=sd, tick=to_units(tick, pd), lot=to_units(lot, sd),
            min_size=to_units(_text(min_amount, f"{what} min size"), sd) if min_amount is not None else 0,
            # A minimum finer than price x size could express is rounded up: below it is refused.
            min_notional=(to_units(_text(min_cost, f"{what} min notional"), pd + sd, rounding=Rounding.CEIL)
                          if min_cost is not None else 0),
        )
    except AmountError as e:
        raise MarketRulesError(f"{what}: {e}") from None


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
        self.markets: dict[str, MarketRules] = {}
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

    async def load_markets(self) -> dict[str, MarketRules]:
        markets = await self._call(lambda: self.exchange.load_markets())
        self.markets = {m["id"]: market_rules(m) for m in markets.values() if m.get("spot", True)}
        return self.markets

    def market(self, symbol: str) -> MarketRules:
        try:
            return self.markets[symbol]
        except KeyError:
            raise MarketRulesError(f"{self.name}: unknown market {symbol!r} (load_markets first?)") from None

    # ------------------------------------------------------------------ OrderVenue
    async def create_order(self, req: OrderRequest) -> OrderReport:
        m = self.market(req.symbol)
        params: dict[str, Any] = {"clientOrderId": req.client_id}
        pinned = req.timestamp_ms is not None and self.recv_window_ms is not None
        if pinned:
            # Signed with exactly the journaled time and window (ccxt's own come second).
            params.update(timestamp=req.timestamp_ms, recvWindow=self.recv_window_ms)
        o = await self._call(lambda: self.exchange.create_order(
            m.unified, "limit", req.side.value, m.size_str(req.quantity), m.price_str(req.price), params),
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

    async def _trade_page(self, m: MarketRules, q: TradePage) -> list[TradeReport]:
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
    def market_of_unified(self, unified: str | None) -> MarketRules | None:
        """The market ccxt calls `unified` (e.g. BTC/USDT), or None if it is not loaded."""
        return next((m for m in self.markets.values() if m.unified == unified), None)

    def _market_of(self, o: dict[str, Any]) -> MarketRules:
        mid = (o.get("info") or {}).get("symbol")
        m = self.markets.get(mid) if mid else None
        m = m or self.market_of_unified(o.get("symbol"))
        if m is None:
            raise MarketRulesError(f"{self.name}: an order in an unknown market: {o.get('symbol')!r}")
        return m

    def _report(self, o: dict[str, Any], m: MarketRules) -> OrderReport:
        qty, filled = m.size(_text(o.get("amount") or "0", "amount")), m.size(_text(o.get("filled") or "0", "filled"))
        return OrderReport(
            client_id=o.get("clientOrderId"), exchange_id=str(o["id"]), symbol=m.symbol, side=Side.from_value(o["side"]),
            status=_status(o.get("status"), filled, qty), price=m.price(_text(o.get("price") or "0", "price")),
            quantity=qty, filled=filled,
        )

    @staticmethod
    def trade_report(t: dict[str, Any], m: MarketRules) -> TradeReport:
        """A ccxt unified trade as the tracker's exact `TradeReport`."""
        fee = t.get("fee") or {}
        return TradeReport(
            trade_id=str(t["id"]), exchange_id=str(t["order"]), client_id=t.get("clientOrderId"), symbol=m.symbol,
            side=Side.from_value(t["side"]), price=m.price(_text(t["price"], "price")), qty=m.size(_text(t["amount"], "amount")),
            fee=fee_of(fee.get("cost") or "0", m), fee_asset=fee.get("currency") or "",
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


# ccxt's unified order statuses onto ours ("open" splits on the filled amount).
_CCXT_STATUS: dict[str, VenueStatus] = {
    "open": VenueStatus.OPEN, "closed": VenueStatus.FILLED, "canceled": VenueStatus.CANCELED,
    "expired": VenueStatus.EXPIRED, "rejected": VenueStatus.REJECTED,
}


def _status(status: str | None, filled: int, qty: int) -> VenueStatus:
    s = _CCXT_STATUS.get(status or "")
    if s is None:
        raise VenueError(f"unknown order status from ccxt: {status!r}")
    return VenueStatus.PARTIALLY_FILLED if s is VenueStatus.OPEN and filled > 0 else s


if TYPE_CHECKING:
    _implements: type[VenueAccount] = CcxtVenue  # mypy checks CcxtVenue against the protocol
