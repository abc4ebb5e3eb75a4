"""The simulated venue's operations on Binance parameters, shared by REST and the WebSocket API.

It owns the matching engine, API keys, deposit and withdrawal records and the user-data
subscribers; it knows nothing of HTTP or WebSocket framing. Every engine outcome is fanned out
to the account's subscribers as `executionReport` and `outboundAccountPosition` events.
"""

from __future__ import annotations

import bisect
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from mixmaker.sim.exchange import wire
from mixmaker.sim.exchange.accounts import MARKET
from mixmaker.sim.exchange.auth import KeyStore
from mixmaker.sim.exchange.capital import Capital, Transfer
from mixmaker.sim.exchange.errors import (
    BadCombination,
    IntervalTooBig,
    InvalidParameter,
    OrderRejected,
)
from mixmaker.sim.exchange.faults import Faults
from mixmaker.sim.exchange.matching import MatchingEngine, Outcome, SymbolRules
from mixmaker.sim.exchange.params import DECIMAL_PARAM  # noqa: F401  (re-exported)
from mixmaker.sim.exchange.params import decimal as _decimal
from mixmaker.sim.exchange.params import integer as _int
from mixmaker.sim.exchange.params import required as _required

UserListener = Callable[[dict[str, Any]], None]
DEFAULT_RULES = (SymbolRules("BTCUSDT", "BTC", "USDT"), SymbolRules("ETHUSDT", "ETH", "USDT"))
DAY_MS = 86_400_000
MY_TRADES_DEFAULT_LIMIT, MY_TRADES_MAX_LIMIT = 500, 1000
# The parameter combinations Binance's myTrades accepts; any other is -1128.
MY_TRADES_COMBINATIONS = frozenset(frozenset(c) for c in (
    (), ("orderId",), ("startTime",), ("endTime",), ("fromId",), ("startTime", "endTime"), ("orderId", "fromId")))


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Venue:
    def __init__(
        self,
        rules: Iterable[SymbolRules] = DEFAULT_RULES,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        faults: Faults | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.engine = MatchingEngine(rules, maker_fee=maker_fee, taker_fee=taker_fee)
        self.keys = KeyStore()
        self.faults = faults or Faults()
        self.clock = clock
        self.weight_limit = 6000  # shown in exchangeInfo; the server's limiters enforce them
        self.order_limit = 100
        self.capital = Capital(self.engine.accounts, lambda: self.assets, lambda: self.clock(), self._balance_moved)
        self._listeners: dict[str, list[UserListener]] = {}
        self._changes = 0  # see `version`

    @property
    def version(self) -> int:
        """Grows with every change of accounts, orders, trades, deposits or withdrawals (not the
        market's book): what mixmaker.sim.exchange.persist has to save."""
        return self._changes + self.capital.version

    # Deposits and withdrawals live in `capital`; these keep the venue's old names.
    @property
    def deposits(self) -> list[Transfer]:
        return self.capital.deposits

    @property
    def withdrawals(self) -> list[Transfer]:
        return self.capital.withdrawals

    @property
    def withdraw_delay_ms(self) -> int:
        """How long a withdrawal stays "processing" (status 4) before "completed" (6), when no
        external chain is attached."""
        return self.capital.withdraw_delay_ms

    @withdraw_delay_ms.setter
    def withdraw_delay_ms(self, value: int) -> None:
        self.capital.withdraw_delay_ms = value

    @property
    def assets(self) -> set[str]:
        return {a for r in self.engine.rules.values() for a in (r.base, r.quote)}

    def exchange_info(self) -> dict[str, Any]:
        return wire.exchange_info(list(self.engine.rules.values()), self.clock(), self.weight_limit, self.order_limit)

    # ---- accounts and funding ---------------------------------------------------------------

    def add_account(self, account: str, api_key: str, api_secret: str, balances: Mapping[str, str | Decimal] = {}) -> None:
        self.keys.add(api_key, api_secret, account)
        for asset, value in balances.items():
            self.engine.accounts.credit(account, asset, Decimal(value))
        self.engine.accounts.take_touched()
        self._changes += 1

    def balance(self, account: str, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked)."""
        accounts = self.engine.accounts
        return accounts.free(account, asset), accounts.locked(account, asset)

    def deposit_address(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        return self.capital.deposit_address(account, params)

    def deposit(self, account: str, coin: str, amount: Decimal | str, network: str | None = None) -> Transfer:
        """Credit an on-chain deposit (the test or operator side of funding an account)."""
        return self.capital.deposit(account, coin, amount, network)

    def deposit_from_params(self, params: Mapping[str, str]) -> dict[str, Any]:
        """The operator's `POST /sim/deposit` (standalone runs): credit `account` with `amount` of `coin`."""
        return self.capital.deposit_from_params(params)

    def withdraw(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        return self.capital.withdraw(account, params)

    def capital_config(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return self.capital.config(account, params)

    def deposit_history(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return self.capital.deposit_history(account, params)

    def withdrawal_history(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return self.capital.withdrawal_history(account, params)

    def user_subscribers(self, account: str) -> int:
        """How many user-data streams are listening for `account`."""
        return len(self._listeners.get(account, ()))

    # ---- trading ------------------------------------------------------------------------------

    def new_order(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        symbol = _required(params, "symbol")
        order_type = _required(params, "type")
        qty = _decimal(params, "quantity")
        price = _decimal(params, "price") if "price" in params else None
        if self.faults.hit("reject_order"):
            raise OrderRejected()
        out = self.engine.submit(
            account,
            symbol,
            _required(params, "side"),
            order_type,
            qty,
            price,
            params.get("timeInForce"),
            params.get("newClientOrderId") or None,
            self.clock(),
        )
        self._publish(out)
        assert out.order is not None
        if params.get("newOrderRespType", "FULL") == "ACK":
            return {"symbol": symbol, "orderId": out.order.order_id, "orderListId": -1,
                    "clientOrderId": out.order.client_order_id, "transactTime": out.order.time_ms}
        return wire.order_ack(out.order, out.fills)

    def cancel_order(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        symbol = _required(params, "symbol")
        order_id, client_id = _order_ref(params)
        out = self.engine.cancel(account, symbol, order_id, client_id, self.clock())
        self._publish(out)
        assert out.order is not None
        return wire.cancel_ack(out.order)

    def cancel_open_orders(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        outs = self.engine.cancel_all(account, _required(params, "symbol"), self.clock())
        for out in outs:
            self._publish(out)
        return [wire.cancel_ack(o.order) for o in outs if o.order is not None]

    def query_order(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        order_id, client_id = _order_ref(params)
        return wire.order(self.engine.get_order(account, _required(params, "symbol"), order_id, client_id))

    def all_orders(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        symbol = _required(params, "symbol")
        self.engine.get_rules(symbol)
        orders = [o for o in self.engine.orders.values() if o.account == account and o.symbol == symbol]
        limit = min(_int(params, "limit"), 1000) if "limit" in params else 500
        return [wire.order(o) for o in orders[-limit:]]

    def open_orders(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return [wire.order(o) for o in self.engine.open_orders(account, params.get("symbol") or None)]

    def my_trades(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """`GET /api/v3/myTrades` paged as Binance pages it: ascending by trade id; `limit` 500 by
        default, 1000 at most; `fromId`: trades with id >= it; `startTime`/`endTime` (inclusive,
        at most 24 h apart; one alone spans 24 h from/to it); `orderId` alone or with `fromId`;
        with none of `fromId`/`startTime`/`endTime`, the most recent `limit`."""
        symbol = _required(params, "symbol")
        limit = _int(params, "limit") if "limit" in params else MY_TRADES_DEFAULT_LIMIT
        if not 0 < limit <= MY_TRADES_MAX_LIMIT:
            raise InvalidParameter("Data sent for parameter 'limit' is not valid.")
        given = frozenset(k for k in ("orderId", "fromId", "startTime", "endTime") if k in params)
        if given not in MY_TRADES_COMBINATIONS:
            raise BadCombination()
        fills = self.engine.my_trades(account, symbol)  # ascending by trade id
        if "orderId" in given:
            order_id = _int(params, "orderId")
            fills = [f for f in fills if f.order_id == order_id]
        if "fromId" in given:
            at = bisect.bisect_left(fills, _int(params, "fromId"), key=lambda f: f.trade_id)
            return [wire.my_trade(f) for f in fills[at:at + limit]]
        if "startTime" in given or "endTime" in given:
            start = _int(params, "startTime") if "startTime" in given else _int(params, "endTime") - DAY_MS
            end = _int(params, "endTime") if "endTime" in given else start + DAY_MS
            if end - start > DAY_MS:
                raise IntervalTooBig()
            inside = [f for f in fills if start <= f.time_ms <= end]
            # From a start: the oldest of the window; to an end only: the newest before it.
            return [wire.my_trade(f) for f in (inside[:limit] if "startTime" in given else inside[-limit:])]
        return [wire.my_trade(f) for f in fills[-limit:]]

    def account_info(self, account: str) -> dict[str, Any]:
        accounts = self.engine.accounts
        maker = int(self.engine.maker_fee * 10_000)
        taker = int(self.engine.taker_fee * 10_000)
        return {
            "makerCommission": maker,
            "takerCommission": taker,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": wire.amount(self.engine.maker_fee), "taker": wire.amount(self.engine.taker_fee),
                                "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.clock(),
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": wire.amount(accounts.free(account, a)), "locked": wire.amount(accounts.locked(account, a))}
                for a in sorted(self.assets | set(accounts.assets(account)))
            ],
            "permissions": ["SPOT"],
            "uid": int(hashlib.sha256(account.encode()).hexdigest()[:8], 16),
        }

    def depth(self, params: Mapping[str, str]) -> dict[str, Any]:
        limit = min(_int(params, "limit"), 5000) if "limit" in params else 100
        last_id, bids, asks = self.engine.depth(_required(params, "symbol"), limit)
        return {"lastUpdateId": last_id, "bids": wire.levels(bids), "asks": wire.levels(asks)}

    # ---- market activity ----------------------------------------------------------------------

    def set_market_level(self, symbol: str, side: str, price: Decimal, qty: Decimal) -> None:
        self._publish(self.engine.set_market_level(symbol, side, price, qty, self.clock()))

    def market_trade(self, symbol: str, price: Decimal, qty: Decimal, buyer_is_maker: bool) -> None:
        self._publish(self.engine.market_trade(symbol, price, qty, buyer_is_maker, self.clock()))

    # ---- user data stream ---------------------------------------------------------------------

    def subscribe_user(self, account: str, listener: UserListener) -> Callable[[], None]:
        listeners = self._listeners.setdefault(account, [])
        listeners.append(listener)
        return lambda: listeners.remove(listener) if listener in listeners else None

    def _publish(self, out: Outcome) -> None:
        if out.updates or out.balances:  # one of our accounts' orders or balances changed
            self._changes += 1
        now = self.clock()
        for update in out.updates:
            self._emit(update.order.account, wire.execution_report(update, now))
        for account, assets in out.balances.items():
            self._emit(account, self._position(account, assets, now))

    def _balance_moved(self, account: str, coin: str, delta: Decimal, now: int) -> None:
        self._changes += 1
        self.engine.accounts.take_touched()
        self._emit(account, wire.balance_update(coin, delta, now))
        self._emit(account, self._position(account, [coin], now))

    def _position(self, account: str, assets: list[str], now: int) -> dict[str, Any]:
        rows = [(a, *self.balance(account, a)) for a in sorted(assets)]
        return wire.account_position(rows, now)

    def _emit(self, account: str, event: dict[str, Any]) -> None:
        if account == MARKET:
            return
        for listener in list(self._listeners.get(account, ())):
            listener(event)


def _order_ref(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    order_id = _int(params, "orderId") if params.get("orderId") else None
    return order_id, params.get("origClientOrderId") or None
