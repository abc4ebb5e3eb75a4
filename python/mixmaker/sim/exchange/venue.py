"""The simulated venue's operations on Binance parameters, shared by REST and the WebSocket API.

It owns the matching engine, API keys, deposit and withdrawal records and the user-data
subscribers; it knows nothing of HTTP or WebSocket framing. Every engine outcome is fanned out
to the account's subscribers as `executionReport` and `outboundAccountPosition` events.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from mixmaker.sim.exchange import wire
from mixmaker.sim.exchange.accounts import MARKET
from mixmaker.sim.exchange.auth import KeyStore
from mixmaker.sim.exchange.errors import (
    BadCombination,
    BadParameter,
    IllegalValue,
    IntervalTooBig,
    InvalidParameter,
    OrderRejected,
    UnknownAsset,
)
from mixmaker.sim.exchange.faults import Faults
from mixmaker.sim.exchange.matching import MatchingEngine, Outcome, SymbolRules

UserListener = Callable[[dict[str, Any]], None]
DECIMAL_PARAM = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
DEFAULT_RULES = (SymbolRules("BTCUSDT", "BTC", "USDT"), SymbolRules("ETHUSDT", "ETH", "USDT"))
DAY_MS = 86_400_000
MY_TRADES_DEFAULT_LIMIT, MY_TRADES_MAX_LIMIT = 500, 1000
# The parameter combinations Binance's myTrades accepts; any other is -1128.
MY_TRADES_COMBINATIONS = frozenset(frozenset(c) for c in (
    (), ("orderId",), ("startTime",), ("endTime",), ("fromId",), ("startTime", "endTime"), ("orderId", "fromId")))


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Transfer:
    """A deposit or withdrawal, as the SAPI history endpoints report it."""

    id: str
    account: str
    coin: str
    amount: Decimal
    network: str
    address: str
    tx_id: str
    time_ms: int
    fee: Decimal = Decimal(0)
    client_id: str = ""  # a withdrawal's `withdrawOrderId`


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
        self.withdraw_delay_ms = 0  # how long a withdrawal stays "processing" (status 4) before "completed" (6)
        self.weight_limit = 6000  # shown in exchangeInfo; the server's limiters enforce them
        self.order_limit = 100
        self.deposits: list[Transfer] = []
        self.withdrawals: list[Transfer] = []
        self._listeners: dict[str, list[UserListener]] = {}

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

    def balance(self, account: str, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked)."""
        accounts = self.engine.accounts
        return accounts.free(account, asset), accounts.locked(account, asset)

    def deposit_address(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        coin = self._coin(params)
        network = params.get("network") or coin
        return {"address": _address(account, coin, network), "coin": coin, "tag": "", "url": ""}

    def deposit(self, account: str, coin: str, amount: Decimal | str, network: str | None = None) -> Transfer:
        """Credit an on-chain deposit (the test or operator side of funding an account)."""
        value = Decimal(amount)
        if coin not in self.assets:
            raise UnknownAsset()
        now = self.clock()
        n = len(self.deposits) + 1
        network = network or coin
        transfer = Transfer(f"dep{n}", account, coin, value, network, _address(account, coin, network), _txid("d", n), now)
        self.engine.accounts.credit(account, coin, value)
        self.deposits.append(transfer)
        self._balance_moved(account, coin, value, now)
        return transfer

    def deposit_from_params(self, params: Mapping[str, str]) -> dict[str, Any]:
        """The operator's `POST /sim/deposit` (standalone runs): credit `account` with `amount` of `coin`."""
        value = _decimal(params, "amount")
        if value <= 0:
            raise BadParameter("Parameter 'amount' must be positive.")
        t = self.deposit(_required(params, "account"), self._coin(params), value, params.get("network") or None)
        return {"id": t.id, "txId": t.tx_id, "address": t.address}

    def withdraw(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        coin = self._coin(params)
        value = _decimal(params, "amount")
        address = params.get("address") or ""
        if value <= 0 or not address:
            raise BadParameter("Mandatory parameter 'amount' or 'address' was not sent, was empty/null, or malformed.")
        now = self.clock()
        self.engine.accounts.debit(account, coin, value)
        n = len(self.withdrawals) + 1
        transfer = Transfer(f"wd{n}", account, coin, value, params.get("network") or coin, address, _txid("w", n), now,
                            client_id=params.get("withdrawOrderId") or "")
        self.withdrawals.append(transfer)
        self._balance_moved(account, coin, -value, now)
        return {"id": transfer.id}

    def deposit_history(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return [
            {
                "id": t.id,
                "amount": wire.amount(t.amount),
                "coin": t.coin,
                "network": t.network,
                "status": 1,
                "address": t.address,
                "addressTag": "",
                "txId": t.tx_id,
                "insertTime": t.time_ms,
                "completeTime": t.time_ms,
                "transferType": 0,
                "confirmTimes": "1/1",
                "unlockConfirm": 0,
                "walletType": 0,
            }
            for t in _history(self.deposits, account, params)
        ]

    def withdrawal_history(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        now = self.clock()
        return [self._withdrawal(t, now >= t.time_ms + self.withdraw_delay_ms) for t in _history(self.withdrawals, account, params)]

    def _withdrawal(self, t: Transfer, done: bool) -> dict[str, Any]:
        row = {
            "id": t.id,
            "amount": wire.amount(t.amount),
            "transactionFee": wire.amount(t.fee),
            "coin": t.coin,
            "status": 6 if done else 4,  # completed / processing
            "address": t.address,
            "txId": t.tx_id if done else "",  # the chain transaction exists once it is sent
            "applyTime": _utc(t.time_ms),
            "network": t.network,
            "transferType": 0,
            "info": "",
            "confirmNo": 1 if done else 0,
            "walletType": 0,
        }
        if t.client_id:
            row["withdrawOrderId"] = t.client_id
        if done:
            row["completeTime"] = _utc(t.time_ms + self.withdraw_delay_ms)
        return row

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
        now = self.clock()
        for update in out.updates:
            self._emit(update.order.account, wire.execution_report(update, now))
        for account, assets in out.balances.items():
            self._emit(account, self._position(account, assets, now))

    def _balance_moved(self, account: str, coin: str, delta: Decimal, now: int) -> None:
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

    def _coin(self, params: Mapping[str, str]) -> str:
        coin = _required(params, "coin")
        if coin not in self.assets:
            raise UnknownAsset()
        return coin


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise BadParameter(f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _decimal(params: Mapping[str, str], name: str) -> Decimal:
    """A decimal parameter exactly as Binance accepts it: plain digits, no sign, no exponent."""
    text = _required(params, name)
    if not DECIMAL_PARAM.fullmatch(text):
        raise IllegalValue(
            f"Illegal characters found in parameter '{name}'; legal range is '{DECIMAL_PARAM.pattern}'."
        )
    return Decimal(text)


def _int(params: Mapping[str, str], name: str) -> int:
    try:
        return int(_required(params, name))
    except ValueError:
        raise IllegalValue(f"Illegal characters found in parameter '{name}'.") from None


def _order_ref(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    order_id = _int(params, "orderId") if params.get("orderId") else None
    return order_id, params.get("origClientOrderId") or None


def _history(transfers: list[Transfer], account: str, params: Mapping[str, str]) -> list[Transfer]:
    coin = params.get("coin")
    start = _int(params, "startTime") if "startTime" in params else 0
    end = _int(params, "endTime") if "endTime" in params else 2**63
    client_id = params.get("withdrawOrderId")
    rows = [t for t in transfers if t.account == account and (not coin or t.coin == coin) and start <= t.time_ms <= end
            and (not client_id or t.client_id == client_id)]
    return list(reversed(rows))[: _int(params, "limit") if "limit" in params else 1000]


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def _address(account: str, coin: str, network: str) -> str:
    return "sim" + hashlib.sha256(f"{account}/{coin}/{network}".encode()).hexdigest()[:37]


def _txid(kind: str, n: int) -> str:
    return hashlib.sha256(f"{kind}{n}".encode()).hexdigest()
