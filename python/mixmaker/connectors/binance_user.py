"""Binance spot's user data stream over the WebSocket API (picows), into the order tracker.

Spot has no listenKey any more: one signed `userDataStream.subscribe.signature` request on the
WS-API socket, then events arrive wrapped as `{"subscriptionId", "event"}`:
- `executionReport` becomes an `OrderReport` (every one) and a `TradeReport` (`x == TRADE`), in
  the market's exact integers;
- `outboundAccountPosition` becomes exact `Balance`s.

Events lost while the socket was down are not replayed by the venue, so after every
re-subscription `on_resubscribed` runs: the wiring catches up by REST there with
`ClientOrderTracker.catch_up` (every trade since its last complete scan, all pages of `myTrades`,
however many fills the gap held; it drops what it already has, by trade id), then polls. The subscription request waits in the
account's rate limiter like any other, and is signed with the venue's clock (`now_ms`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from picows import WSMsgType, WSTransport

from mixmaker.connectors import binance_limits as bl
from mixmaker.connectors.account import Balance
from mixmaker.connectors.backoff import Backoff
from mixmaker.connectors.ccxt_account import exact, fee_of
from mixmaker.connectors.credentials import ApiCredentials
from mixmaker.connectors.limiter import Priority, RateLimiter
from mixmaker.connectors.reconnect import ReconnectingSocket
from mixmaker.errors import MixmakerError
from mixmaker.markets import MarketRules
from mixmaker.orders.protocol import OrderReport, Side, TradeReport, VenueStatus

log = logging.getLogger(__name__)

# Binance's words (the wire's) onto ours.
_SIDE: dict[str, Side] = {"BUY": Side.BUY, "SELL": Side.SELL}
_STATUS: dict[str, VenueStatus] = {
    "NEW": VenueStatus.OPEN, "PARTIALLY_FILLED": VenueStatus.PARTIALLY_FILLED, "FILLED": VenueStatus.FILLED,
    "CANCELED": VenueStatus.CANCELED, "PENDING_CANCEL": VenueStatus.OPEN, "REJECTED": VenueStatus.REJECTED,
    "EXPIRED": VenueStatus.EXPIRED, "EXPIRED_IN_MATCH": VenueStatus.EXPIRED,
}


class UserStreamError(MixmakerError):
    """The venue refused the subscription (bad key, signature or timestamp)."""


@dataclass
class UserStreamStats:
    subscriptions: int = 0
    disconnects: int = 0
    events: int = 0
    trades: int = 0
    unparsed: int = 0
    catch_up_failures: int = 0
    last_error: str | None = None


def order_report(e: dict[str, Any], m: MarketRules) -> OrderReport:
    return OrderReport(
        client_id=e.get("c") or e.get("C") or None, exchange_id=str(e["i"]), symbol=m.symbol,
        side=_SIDE[e["S"]], status=_STATUS[e["X"]], price=m.price(e["p"]), quantity=m.size(e["q"]),
        filled=m.size(e["z"]),
    )


def trade_report(e: dict[str, Any], m: MarketRules) -> TradeReport:
    return TradeReport(
        trade_id=str(e["t"]), exchange_id=str(e["i"]), client_id=e.get("c") or e.get("C") or None, symbol=m.symbol,
        side=_SIDE[e["S"]], price=m.price(e["L"]), qty=m.size(e["l"]),
        fee=fee_of(e.get("n") or "0", m), fee_asset=e.get("N") or "",
        is_maker=bool(e.get("m")), time_ms=int(e.get("T") or 0),
    )


class UserStream(ReconnectingSocket):
    """`await run()` until `close()`; callbacks get exact reports as events arrive."""

    def __init__(
        self,
        credentials: ApiCredentials,
        *,
        ws_api_url: str,
        limiter: RateLimiter,
        markets: dict[str, MarketRules],
        now_ms: Callable[[], int],
        on_trade: Callable[[TradeReport], object],
        on_order: Callable[[OrderReport], Awaitable[None]] | None = None,
        on_balances: Callable[[dict[str, Balance]], object] | None = None,
        on_resubscribed: Callable[[], Awaitable[None]] | None = None,
        recv_window_ms: int = 5000,
        backoff_s: float = 0.2,
        backoff_max_s: float = 30.0,
        ping_idle_s: float = 20.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(ws_api_url, backoff=Backoff(backoff_s, backoff_max_s, seed), ping_idle_s=ping_idle_s)
        self.credentials = credentials
        self.limiter = limiter
        self.markets = markets
        self.now_ms = now_ms
        self.on_trade, self.on_order, self.on_balances = on_trade, on_order, on_balances
        self.on_resubscribed = on_resubscribed
        self.recv_window_ms = recv_window_ms
        self.stats = UserStreamStats()
        self.subscribed = asyncio.Event()
        self._reply: asyncio.Future[dict[str, Any]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _on_connected(self, transport: WSTransport) -> None:
        # A refused key or signature raises UserStreamError, which ends run(): retrying will not help.
        await self._subscribe(transport)
        if self.stats.subscriptions > 1 and self.on_resubscribed is not None:
            await self._catch_up()  # what happened while we were away

    async def _on_failure(self, error: Exception, failures: int) -> None:
        self.stats.last_error = f"{type(error).__name__}: {error}"

    def _on_disconnected(self) -> None:
        self.subscribed.clear()
        if not self._closed:
            self.stats.disconnects += 1

    async def _catch_up(self) -> None:
        assert self.on_resubscribed is not None
        try:
            await self.on_resubscribed()
        except Exception as e:  # noqa: BLE001 - the live events go on; the next catch-up starts from the same point
            self.stats.catch_up_failures += 1
            self.stats.last_error = f"catch-up after reconnect: {type(e).__name__}: {e}"
            log.warning("user stream: %s", self.stats.last_error)

    async def _subscribe(self, transport: WSTransport) -> None:
        async with self.limiter.request({bl.REQUEST_WEIGHT: 2, bl.RAW_REQUESTS: 1}, Priority.QUERY) as req:
            self._reply = asyncio.get_running_loop().create_future()
            # No local of this frame (which can raise) holds the signed request: it carries the key.
            transport.send(WSMsgType.TEXT, self._subscription())
            reply = await asyncio.wait_for(self._reply, 10)
            req.answered()
            if reply.get("status") in (418, 429):  # before the slot frees, or a waiter would go out now
                self.limiter.rate_limited(bl.ws_retry_after_s(reply.get("error") or {}), banned=reply.get("status") == 418)
        if reply.get("status") != 200:
            err = reply.get("error") or {}
            if reply.get("status") in (418, 429):
                raise RuntimeError(f"user stream subscription rate limited: {err}")
            raise UserStreamError(f"user stream subscription refused: {err.get('code')} {err.get('msg')}")
        self.stats.subscriptions += 1
        self.subscribed.set()

    def _subscription(self) -> bytes:
        params: dict[str, Any] = {"apiKey": self.credentials.key, "recvWindow": self.recv_window_ms,
                                  "timestamp": self.now_ms()}
        # The WS-API signs its params sorted by key and raw-encoded.
        params["signature"] = self.credentials.sign("&".join(f"{k}={v}" for k, v in sorted(params.items())))
        return json.dumps({"id": "sub", "method": "userDataStream.subscribe.signature", "params": params}).encode()

    def _on_frame(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            self.stats.unparsed += 1
            return
        if "event" not in msg:
            if self._reply is not None and not self._reply.done():
                self._reply.set_result(msg)
            return
        self.stats.events += 1
        try:
            self._on_event(msg["event"])
        except (KeyError, ValueError, TypeError) as e:
            # One bad event must not stop the stream; the REST catch-up covers what it said.
            self.stats.unparsed += 1
            self.stats.last_error = f"event not understood: {type(e).__name__}: {e}"
            log.warning("user stream: %s", self.stats.last_error)

    def _on_event(self, e: dict[str, Any]) -> None:
        kind = e.get("e")
        if kind == "executionReport":
            m = self.markets.get(e.get("s", ""))
            if m is None:
                return  # a market we do not trade here
            if e.get("x") == "TRADE":
                self.stats.trades += 1
                self.on_trade(trade_report(e, m))
            if self.on_order is not None:
                self._spawn(self.on_order(order_report(e, m)))
        elif kind == "outboundAccountPosition" and self.on_balances is not None:
            self.on_balances({b["a"]: Balance(exact(b["f"], f"{b['a']} free"), exact(b["l"], f"{b['a']} locked"))
                              for b in e.get("B", [])})

    def _spawn(self, aw: Awaitable[None]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            e = task.exception()
            self.stats.last_error = f"order update handler: {type(e).__name__}: {e}"
            log.warning("user stream: %s", self.stats.last_error)
