"""Binance spot JSON shapes built from engine objects (REST bodies and WebSocket events).

Amounts leave as decimal strings with Binance's 8 places; ids and times as integers.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from mixmaker.sim.exchange.matching import Diff, Fill, Order, OrderUpdate, PublicTrade, SymbolRules

PLACES = Decimal("0.00000001")


def dumps(message: Any) -> bytes:
    """Compact JSON, as the venue sends it."""
    return json.dumps(message, separators=(",", ":")).encode()


def amount(value: Decimal) -> str:
    """Binance prints 8 decimals; finer values (fees at fine rates) keep their exact digits."""
    if value == value.quantize(PLACES):
        return f"{value.quantize(PLACES):f}"
    return f"{value.normalize():f}"


def exchange_info(rules: list[SymbolRules], server_ms: int, weight_limit: int, order_limit: int) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": server_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": order_limit},
        ],
        "exchangeFilters": [],
        "symbols": [_symbol(r) for r in rules],
    }


def _symbol(r: SymbolRules) -> dict[str, Any]:
    return {
        "symbol": r.symbol,
        "status": "TRADING",
        "baseAsset": r.base,
        "baseAssetPrecision": 8,
        "quoteAsset": r.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": amount(r.min_price),
                "maxPrice": amount(r.max_price),
                "tickSize": amount(r.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": amount(r.min_qty),
                "maxQty": amount(r.max_qty),
                "stepSize": amount(r.step_size),
            },
            {"filterType": "NOTIONAL", "minNotional": amount(r.min_notional), "maxNotional": "9000000.00000000"},
        ],
    }


def levels(rows: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[amount(p), amount(q)] for p, q in rows]


def _order_fields(o: Order) -> dict[str, Any]:
    """What every order shape (query, ack, cancel) says about the order."""
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "price": amount(o.price),
        "origQty": amount(o.orig_qty),
        "executedQty": amount(o.executed_qty),
        "cummulativeQuoteQty": amount(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "workingTime": o.time_ms,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def order(o: Order) -> dict[str, Any]:
    """The `GET /api/v3/order` shape (also each row of openOrders)."""
    return {
        **_order_fields(o),
        "stopPrice": "0.00000000",
        "icebergQty": "0.00000000",
        "time": o.time_ms,
        "updateTime": o.update_ms,
        "isWorking": True,
        "origQuoteOrderQty": "0.00000000",
    }


def order_ack(o: Order, fills: list[Fill]) -> dict[str, Any]:
    """The `POST /api/v3/order` FULL response."""
    return {
        **_order_fields(o),
        "transactTime": o.update_ms,
        "fills": [
            {
                "price": amount(f.price),
                "qty": amount(f.qty),
                "commission": amount(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in fills
        ],
    }


def cancel_ack(o: Order) -> dict[str, Any]:
    body = order(o)
    body["origClientOrderId"] = o.orig_client_order_id or o.client_order_id
    body["transactTime"] = o.update_ms
    return body


def my_trade(f: Fill) -> dict[str, Any]:
    return {
        "symbol": f.symbol,
        "id": f.trade_id,
        "orderId": f.order_id,
        "orderListId": -1,
        "price": amount(f.price),
        "qty": amount(f.qty),
        "quoteQty": amount(f.quote_qty),
        "commission": amount(f.commission),
        "commissionAsset": f.commission_asset,
        "time": f.time_ms,
        "isBuyer": f.side == "BUY",
        "isMaker": f.is_maker,
        "isBestMatch": True,
    }


def execution_report(u: OrderUpdate, event_ms: int) -> dict[str, Any]:
    o, f = u.order, u.fill
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": o.symbol,
        "c": o.client_order_id if u.execution != "CANCELED" else "",
        "S": o.side,
        "o": o.type,
        "f": o.time_in_force,
        "q": amount(o.orig_qty),
        "p": amount(o.price),
        "P": "0.00000000",
        "F": "0.00000000",
        "g": -1,
        "C": o.client_order_id if u.execution == "CANCELED" else "",
        "x": u.execution,
        "X": o.status,
        "r": "NONE",
        "i": o.order_id,
        "l": amount(f.qty if f else Decimal(0)),
        "z": amount(o.executed_qty),
        "L": amount(f.price if f else Decimal(0)),
        "n": amount(f.commission if f else Decimal(0)),
        "N": f.commission_asset if f else None,
        "T": o.update_ms,
        "t": f.trade_id if f else -1,
        "I": 0,
        "w": o.is_open,
        "m": f.is_maker if f else False,
        "M": False,
        "O": o.time_ms,
        "Z": amount(o.cum_quote),
        "Y": amount(f.quote_qty if f else Decimal(0)),
        "Q": "0.00000000",
        "W": o.time_ms,
        "V": "EXPIRE_MAKER",
    }


def account_position(balances: list[tuple[str, Decimal, Decimal]], event_ms: int) -> dict[str, Any]:
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": event_ms,
        "B": [{"a": a, "f": amount(free), "l": amount(locked)} for a, free, locked in balances],
    }


def balance_update(asset: str, delta: Decimal, event_ms: int) -> dict[str, Any]:
    return {"e": "balanceUpdate", "E": event_ms, "a": asset, "d": amount(delta), "T": event_ms}


def depth_update(d: Diff, event_ms: int) -> dict[str, Any]:
    return {
        "e": "depthUpdate",
        "E": event_ms,
        "s": d.symbol,
        "U": d.first_id,
        "u": d.last_id,
        "b": levels(d.bids),
        "a": levels(d.asks),
    }


def trade(t: PublicTrade, event_ms: int) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": event_ms,
        "s": t.symbol,
        "t": t.trade_id,
        "p": amount(t.price),
        "q": amount(t.qty),
        "T": t.time_ms,
        "m": t.buyer_is_maker,
        "M": True,
    }
