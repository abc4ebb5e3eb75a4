"""Binance spot REST (`/api/v3`) and the SAPI wallet endpoints, served by aiohttp.

Each request pays its weight to the limiter first (429/418 with `Retry-After`), then signed
requests are checked (key, HMAC over the exact received parameters, timestamp/recvWindow),
then the venue acts. Order entry is where ack faults strike: after the venue has acted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from mixmaker.sim.exchange import chain_api
from mixmaker.sim.exchange.errors import BackendTimeout, ExchangeError, RateLimited
from mixmaker.sim.exchange.faults import Faults
from mixmaker.sim.exchange.limits import OrderCounter, WeightLimiter
from mixmaker.sim.exchange.operations import Venue

Params = Mapping[str, str]
Action = Callable[[Venue, str, Params], Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    action: Action
    weight: int | Callable[[Params], int] = 1
    signed: bool = True
    order_entry: bool = False  # ack faults apply
    new_order: bool = False  # counts against the account's order rate
    snapshot: bool = False  # slow_snapshot applies


def _depth_weight(params: Params) -> int:
    text = params.get("limit") or "100"
    limit = int(text) if text.isdigit() else 100
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _public(action: Callable[[Venue, Params], Any]) -> Action:
    return lambda venue, _account, params: action(venue, params)


ROUTES = (
    Route("GET", "/api/v3/ping", _public(lambda v, p: {}), signed=False),
    Route("GET", "/api/v3/time", _public(lambda v, p: {"serverTime": v.clock()}), signed=False),
    Route("GET", "/api/v3/exchangeInfo", _public(lambda v, p: v.exchange_info()), 20, signed=False),
    Route("GET", "/api/v3/depth", _public(Venue.depth), _depth_weight, signed=False, snapshot=True),
    Route("GET", "/api/v3/account", lambda v, a, p: v.account_info(a), 20),
    Route("POST", "/api/v3/order", Venue.new_order, 1, order_entry=True, new_order=True),
    Route("DELETE", "/api/v3/order", Venue.cancel_order, 1, order_entry=True),
    Route("GET", "/api/v3/order", Venue.query_order, 4),
    Route("GET", "/api/v3/openOrders", Venue.open_orders, lambda p: 6 if p.get("symbol") else 80),
    Route("GET", "/api/v3/allOrders", Venue.all_orders, 20),
    Route("DELETE", "/api/v3/openOrders", Venue.cancel_open_orders, 1, order_entry=True),
    Route("GET", "/api/v3/myTrades", Venue.my_trades, lambda p: 5 if p.get("orderId") else 20),
    Route("GET", "/sapi/v1/capital/config/getall", Venue.capital_config, 10),
    Route("GET", "/sapi/v1/capital/deposit/address", Venue.deposit_address, 10),
    Route("GET", "/sapi/v1/capital/deposit/hisrec", Venue.deposit_history, 1),
    Route("GET", "/sapi/v1/capital/withdraw/history", Venue.withdrawal_history, 10),
    # Moves money, so the ack faults strike it too (acted on, then the answer is late or lost).
    Route("POST", "/sapi/v1/capital/withdraw/apply", Venue.withdraw, 1, order_entry=True),
    # Not Binance: the operator funds an account of a standalone simulator.
    Route("POST", "/sim/deposit", _public(Venue.deposit_from_params), 0, signed=False),
    # Not Binance: the simulated chain (mixmaker.sim.chain) running in another process.
    Route("POST", "/sim/chain/attach", _public(chain_api.attach), 0, signed=False),
    Route("POST", "/sim/chain/withdrawals", _public(chain_api.withdrawals), 0, signed=False),
    Route("POST", "/sim/chain/withdrawals/sent", _public(chain_api.withdrawal_sent), 0, signed=False),
    Route("POST", "/sim/chain/withdrawals/failed", _public(chain_api.withdrawal_failed), 0, signed=False),
    Route("POST", "/sim/chain/owns", _public(chain_api.owns), 0, signed=False),
    Route("POST", "/sim/chain/deposits", _public(chain_api.deposit), 0, signed=False),
)


class RestApi:
    def __init__(self, venue: Venue, faults: Faults, limiter: WeightLimiter, orders: OrderCounter) -> None:
        self.venue = venue
        self.faults = faults
        self.limiter = limiter
        self.orders = orders
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order, for tests

    def app(self) -> web.Application:
        app = web.Application()
        for route in ROUTES:
            app.router.add_route(route.method, route.path, self._handler(route))
        return app

    def _handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(route, request)

        return handle

    async def _serve(self, route: Route, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        now = self.venue.clock()
        raw_query = request.raw_path.partition("?")[2]
        raw_body = await request.text() if request.can_read_body else ""
        params = dict(parse_qsl(raw_body, keep_blank_values=True))
        params.update(parse_qsl(raw_query, keep_blank_values=True))  # the query wins, as on Binance
        headers: dict[str, str] = {}
        try:
            weight = route.weight(params) if callable(route.weight) else route.weight
            used = self.limiter.charge(weight, now, force_limit=self.faults.hit("rate_limit"))
            headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            account = ""
            if route.signed:
                key = request.headers.get("X-MBX-APIKEY")
                account = self.venue.keys.verify_rest(key, raw_query, raw_body, params, now)
            if route.new_order:
                headers["X-MBX-ORDER-COUNT-10S"] = str(self.orders.charge(account, now))
            body = route.action(self.venue, account, params)
        except RateLimited as e:
            headers["Retry-After"] = str(e.retry_after)
            headers["X-MBX-USED-WEIGHT-1M"] = str(self.limiter.used(now))
            return _error(e, headers)
        except ExchangeError as e:
            return _error(e, headers)
        if route.snapshot and self.faults.hit("slow_snapshot"):
            await asyncio.sleep(self.faults.delay("slow_snapshot"))
        if route.order_entry:
            await self._ack_faults(request)
            if self.faults.hit("ack_5xx"):
                return _error(BackendTimeout(), headers)
        return web.Response(text=json.dumps(body), content_type="application/json", headers=headers)

    async def _ack_faults(self, request: web.Request) -> None:
        """The venue has acted; now the answer may be late, very late, or never come."""
        if self.faults.hit("ack_loss"):
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError()  # aiohttp drops the request without writing
        for name in ("act_then_timeout", "ack_delay"):
            if self.faults.hit(name):
                await asyncio.sleep(self.faults.delay(name))
                return


def _error(e: ExchangeError, headers: dict[str, str]) -> web.Response:
    return web.Response(status=e.status, text=json.dumps(e.body()), content_type="application/json", headers=headers)

