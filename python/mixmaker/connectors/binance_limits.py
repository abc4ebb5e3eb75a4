"""Binance spot's rate limits as limiter pools, what each request costs, and what the answers say.

Pools are named `<rateLimitType>_<intervalNum><interval letter>` (`REQUEST_WEIGHT_1M`,
`ORDERS_10S`, `ORDERS_1D`, `RAW_REQUESTS_5M`), the same suffix Binance puts in its usage headers
(`X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-10S`), so a header maps to its pool by name.
SAPI endpoints (wallet: deposits, withdrawals) have their own IP weight pool.

Request weights come from ccxt's per-endpoint costs (ccxt keeps them current): on `/api` one
weight is 0.2 cost units, on `/sapi` 0.1 (ccxt's own conversion).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mixmaker.connectors.limiter import Pool, Priority

REQUEST_WEIGHT = "REQUEST_WEIGHT_1M"
ORDERS_10S = "ORDERS_10S"
ORDERS_1D = "ORDERS_1D"
RAW_REQUESTS = "RAW_REQUESTS_5M"
SAPI_WEIGHT = "SAPI_IP_WEIGHT_1M"

_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}

#: Requests on the wire at once. Binance may ban (418) an IP whose requests arrive inside the
#: Retry-After of a 429, and a 429 can come at any time (another process on the IP, a weight
#: table out of date): every request already on the wire then lands inside it. With one in
#: flight none does, whatever the venue's tolerance; raise it for throughput where a few
#: in-flight requests after a 429 are acceptable (Binance documents bans for *repeated*
#: violations), knowing each 429 can then meet up to `max_in_flight - 1` of them.
MAX_IN_FLIGHT = 1
#: Fraction of every limit left unused: weights Binance counts that our table does not know yet.
HEADROOM = 0.05


def spot_pools() -> list[Pool]:
    """Binance spot's published limits (the same numbers Hummingbot's connector uses)."""
    return [
        Pool(REQUEST_WEIGHT, 6000, 60.0),
        Pool(ORDERS_10S, 100, 10.0),
        Pool(ORDERS_1D, 200_000, 86_400.0),
        Pool(RAW_REQUESTS, 61_000, 300.0),
        Pool(SAPI_WEIGHT, 12_000, 60.0),
    ]


def pools_from_exchange_info(rate_limits: list[Mapping[str, Any]]) -> list[Pool]:
    """The pools an `exchangeInfo` answer declares in `rateLimits` (plus the SAPI pool, which
    it does not list)."""
    pools = []
    for r in rate_limits:
        try:
            kind, interval, num, limit = r["rateLimitType"], r["interval"], int(r["intervalNum"]), int(r["limit"])
            seconds = _SECONDS[interval] * num
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"exchangeInfo rateLimits entry not understood: {r!r}") from e
        pools.append(Pool(f"{kind}_{num}{interval[0]}", limit, float(seconds)))
    return pools + [Pool(SAPI_WEIGHT, 12_000, 60.0)]


def request_cost(api: str, method: str, path: str, ccxt_cost: float | None) -> tuple[Priority, dict[str, int]]:
    """-> (priority, weight per pool) of one REST call, as ccxt describes it."""
    method = method.upper()
    is_order = path in ("order", "orderList/oco", "orderList/oto", "orderList/otoco", "sor/order")
    if method == "DELETE" and (is_order or path in ("openOrders", "orderList")):
        priority = Priority.CANCEL
    elif method == "POST" and is_order:
        priority = Priority.CREATE
    else:
        priority = Priority.QUERY
    cost = 1.0 if ccxt_cost is None else float(ccxt_cost)
    if api.startswith("sapi"):
        return priority, {SAPI_WEIGHT: max(1, round(cost / 0.1))}
    pools = {REQUEST_WEIGHT: max(1, round(cost / 0.2)), RAW_REQUESTS: 1}
    if priority is Priority.CREATE:
        pools[ORDERS_10S] = pools[ORDERS_1D] = 1
    return priority, pools


_USAGE_HEADER = re.compile(r"^x-mbx-(used-weight|order-count)-(\d+)([smhd])$")
_BANNED_UNTIL = re.compile(r"banned until (\d{10,})")


def usage_from_headers(headers: Mapping[str, str]) -> dict[str, int]:
    """Pool name -> the venue's count, from `X-MBX-USED-WEIGHT-1M` and `X-MBX-ORDER-COUNT-10S`."""
    out = {}
    for name, value in headers.items():
        m = _USAGE_HEADER.match(name.lower())
        if m is None:
            continue
        kind = "REQUEST_WEIGHT" if m.group(1) == "used-weight" else "ORDERS"
        try:
            out[f"{kind}_{m.group(2)}{m.group(3).upper()}"] = int(value)
        except ValueError:
            continue  # a malformed header is not worth failing a good answer for
    return out


def retry_after_s(status: int, headers: Mapping[str, str], body: str, now_ms: int) -> float | None:
    """How long a 429/418 asks us to stay away: `Retry-After`, else a 418 body's "banned until
    <ms>", else None (the limiter backs off on its own)."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    if status == 418:
        m = _BANNED_UNTIL.search(body or "")
        if m:
            return max(0.0, (int(m.group(1)) - now_ms) / 1000)
    return None


def ws_retry_after_s(error: Mapping[str, Any]) -> float | None:
    """How long a WebSocket API 429/418 asks us to stay away: its `data.retryAfter` (ms, the
    venue's clock) less `data.serverTime`, else None."""
    data = error.get("data") if isinstance(error, Mapping) else None
    if not isinstance(data, Mapping):
        return None
    try:
        return max(0.0, (int(data["retryAfter"]) - int(data["serverTime"])) / 1000)
    except (KeyError, TypeError, ValueError):
        return None


def depth_weight(limit: int) -> int:
    """Request weight of `GET /api/v3/depth?limit=N` (Binance spot's published table)."""
    if not 1 <= limit <= 5000:
        raise ValueError(f"depth limit must be 1..5000, got {limit}")
    for upto, weight in ((100, 5), (500, 25), (1000, 50)):
        if limit <= upto:
            return weight
    return 250
