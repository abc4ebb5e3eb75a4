"""Binance spot WebSocket endpoints on a picows server: market streams and the WebSocket API.

Routing by path: `/ws-api/v3` is the WebSocket API (user data stream by signature, order
entry); any other `/ws...` or `/stream...` path is a market-stream connection. Raw paths get
bare events, `?streams=a/b` gets the combined `{"stream","data"}` wrapper, and a trailing
`/<stream>` segment subscribes at connect. Depth diffs and trades go out from `StreamHub.publish`,
where the diff faults (skip, duplicate, reorder) and connection drops strike; ack faults hit
WebSocket API order entry as they hit REST, and its requests pay the same weight and order limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

from mixmaker.sim.exchange import wire
from mixmaker.sim.exchange.auth import as_param
from mixmaker.sim.exchange.errors import BackendTimeout, BadParameter, ExchangeError, RateLimited
from mixmaker.sim.exchange.faults import Faults
from mixmaker.sim.exchange.limits import OrderCounter, WeightLimiter
from mixmaker.sim.exchange.matching import Diff
from mixmaker.sim.exchange.operations import Venue

log = logging.getLogger(__name__)
WS_API_PATH = "/ws-api/v3"
SLOW_DEPTH_S = 1.0  # `<symbol>@depth` and `@depth@1000ms`; every other `@depth@...` gets each diff
ORDER_ENTRY = ("order.place", "order.cancel")
WS_API_WEIGHTS = {"userDataStream.subscribe.signature": 2, "order.status": 4, "openOrders.status": 6, "account.status": 20}


class _Connection(WSListener):
    transport: WSTransport | None = None

    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.hub.connections.add(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.hub.connections.discard(self)
        self.closed()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        try:
            request = json.loads(frame.get_payload_as_utf8_text())
        except ValueError:
            self.send({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            return
        self.on_request(request if isinstance(request, dict) else {})

    def send(self, message: Any) -> None:
        self.send_raw(wire.dumps(message))

    def send_raw(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send(WSMsgType.TEXT, payload)

    def push(self, payload: bytes) -> None:
        """A server-initiated message; the ws_drop fault may cut the connection instead."""
        if self.hub.faults.hit("ws_drop"):
            self.drop()
            return
        self.send_raw(payload)

    def drop(self) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.disconnect(graceful=False)

    def on_request(self, request: dict[str, Any]) -> None:
        raise NotImplementedError

    def closed(self) -> None:
        pass


class MarketConnection(_Connection):
    def __init__(self, hub: StreamHub, combined: bool, streams: list[str]) -> None:
        super().__init__(hub)
        self.combined = combined
        self.streams: set[str] = set(streams)

    def on_request(self, request: dict[str, Any]) -> None:
        method, params, rid = request.get("method"), request.get("params") or [], request.get("id")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE") and isinstance(params, list):
            names = {str(p).lower() for p in params}
            self.streams = self.streams | names if method == "SUBSCRIBE" else self.streams - names
            self.send({"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            self.send({"result": sorted(self.streams), "id": rid})
        else:
            self.send({"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": rid})

    def deliver(self, stream: str, event: bytes) -> None:
        """`event` is serialized once for every connection; the combined form wraps it."""
        if stream in self.streams:
            self.push(b'{"stream":"%s","data":%s}' % (stream.encode(), event) if self.combined else event)


class WsApiConnection(_Connection):
    """The WebSocket API: `userDataStream.subscribe.signature`, order entry and queries."""

    def __init__(self, hub: StreamHub) -> None:
        super().__init__(hub)
        self._unsubscribe: dict[int, Callable[[], None]] = {}

    def on_request(self, request: dict[str, Any]) -> None:
        rid, method = request.get("id"), str(request.get("method"))
        params = request.get("params") or {}
        params = params if isinstance(params, dict) else {}
        hub, now = self.hub, self.hub.venue.clock()
        try:
            used = hub.limiter.charge(WS_API_WEIGHTS.get(method, 1), now, force_limit=hub.faults.hit("rate_limit"))
            result = self._call(method, params, now)
        except RateLimited as e:
            data = {"serverTime": now, "retryAfter": now + e.retry_after * 1000}
            self.send({"id": rid, "status": e.status, "error": {**e.body(), "data": data}})
            return
        except ExchangeError as e:
            self.send({"id": rid, "status": e.status, "error": e.body()})
            return
        reply: dict[str, Any] = {"id": rid, "status": 200, "result": result}
        if params.get("returnRateLimits") is not False:
            reply["rateLimits"] = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                    "limit": hub.limiter.limit, "count": used}]
        if method in ORDER_ENTRY:
            self._answer_acted_on(rid, reply)
        else:
            self.send(reply)

    def _answer_acted_on(self, rid: Any, reply: dict[str, Any]) -> None:
        """The venue has acted on an order request; now the answer may be late, wrong or never come."""
        faults = self.hub.faults
        if faults.hit("ack_loss"):
            return
        for name in ("act_then_timeout", "ack_delay"):
            if faults.hit(name):
                asyncio.get_running_loop().call_later(faults.delay(name), self.send, reply)
                return
        if faults.hit("ack_5xx"):
            reply = {"id": rid, "status": BackendTimeout.status, "error": BackendTimeout().body()}
        self.send(reply)

    def _call(self, method: str, params: dict[str, Any], now: int) -> Any:
        venue = self.hub.venue
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": venue.clock()}
        if method == "userDataStream.unsubscribe":
            for sid in list(self._unsubscribe):
                self._unsubscribe.pop(sid)()
            return {}
        actions: dict[str, Callable[[str, dict[str, str]], Any]] = {
            "order.place": venue.new_order,
            "order.cancel": venue.cancel_order,
            "order.status": venue.query_order,
            "openOrders.status": venue.open_orders,
            "account.status": lambda a, _p: venue.account_info(a),
            "userDataStream.subscribe.signature": lambda a, _p: self._subscribe(a),
        }
        if method not in actions:
            raise BadParameter(f"Unknown method '{method}'.")
        account = venue.keys.verify_ws(params, now)
        if method == "order.place":
            self.hub.orders.charge(account, now)
        return actions[method](account, {k: as_param(v) for k, v in params.items()})

    def _subscribe(self, account: str) -> dict[str, int]:
        sid = self.hub.next_subscription_id()
        self._unsubscribe[sid] = self.hub.venue.subscribe_user(account, lambda e: self._user_event(sid, e))
        return {"subscriptionId": sid}

    def _user_event(self, sid: int, event: dict[str, Any]) -> None:
        faults = self.hub.faults
        if faults.hit("event_loss"):
            return
        payload = wire.dumps({"subscriptionId": sid, "event": event})
        if faults.hit("event_delay"):
            asyncio.get_running_loop().call_later(faults.delay("event_delay"), self.push, payload)
            return
        self.push(payload)

    def closed(self) -> None:
        for unsubscribe in self._unsubscribe.values():
            unsubscribe()
        self._unsubscribe.clear()


class StreamHub:
    """Every live connection, and the periodic push of depth diffs and trades."""

    def __init__(
        self, venue: Venue, faults: Faults, limiter: WeightLimiter, orders: OrderCounter, interval: float = 0.1
    ) -> None:
        self.venue = venue
        self.faults = faults
        self.limiter = limiter  # the WebSocket API pays the same IP weight as REST
        self.orders = orders
        self.connections: set[_Connection] = set()
        self.diffs_sent = 0
        self.slow_every = max(1, round(SLOW_DEPTH_S / interval))  # publish ticks per `@depth` (1 s) diff
        self._ticks = 0
        self._slow: dict[str, Diff] = {}  # fast diffs merged, waiting for the next 1 s diff
        self._held: dict[tuple[str, bool], bytes] = {}  # (symbol, slow): a diff the reorder fault holds back
        self._subscription_ids = 0

    def next_subscription_id(self) -> int:
        sid = self._subscription_ids
        self._subscription_ids += 1
        return sid

    def route(self, request: WSUpgradeRequest) -> WSListener | None:
        path, _, query = request.path.decode().partition("?")
        if path.rstrip("/") == WS_API_PATH:
            return WsApiConnection(self)
        if not (path.startswith("/ws") or path.startswith("/stream")):
            return None
        if "streams" in (qs := parse_qs(query)):
            return MarketConnection(self, True, [s.lower() for s in qs["streams"][0].split("/") if s])
        last = path.rstrip("/").rsplit("/", 1)[-1].lower()
        return MarketConnection(self, False, [last] if "@" in last else [])

    def publish(self, flush: bool = False) -> None:
        """Send what changed since the last call: per symbol the fast diff, every `slow_every`
        calls (or on `flush`) the merged 1 s diff, then the trades."""
        now = self.venue.clock()
        engine = self.venue.engine
        self._ticks += 1  # since the last 1 s diff
        slow_due = flush or self._ticks >= self.slow_every
        if slow_due:
            self._ticks = 0
        for symbol in engine.rules:
            diff = engine.take_diff(symbol)
            if diff is not None:
                self._slow[symbol] = _merge(self._slow.get(symbol), diff)
            self._send_diff(symbol, diff, now, slow=False)
            if slow_due:
                self._send_diff(symbol, self._slow.pop(symbol, None), now, slow=True)
            for trade in engine.take_public_trades(symbol):
                self._deliver(f"{symbol.lower()}@trade", wire.dumps(wire.trade(trade, now)))

    def _send_diff(self, symbol: str, diff: Diff | None, now: int, slow: bool) -> None:
        held = self._held.pop((symbol, slow), None)
        if diff is None:
            if held is not None:  # a quiet book: the held-back diff arrives late, not never
                self.deliver_depth(symbol, held, slow)
            return
        event = wire.dumps(wire.depth_update(diff, now))
        if self.faults.hit("diff_skip"):
            if held is not None:
                self.deliver_depth(symbol, held, slow)
            return
        if held is None and self.faults.hit("diff_reorder"):
            self._held[(symbol, slow)] = event
            return
        copies = 2 if self.faults.hit("diff_duplicate") else 1
        for _ in range(copies):
            self.deliver_depth(symbol, event, slow)
        if held is not None:
            self.deliver_depth(symbol, held, slow)

    def deliver_depth(self, symbol: str, event: bytes, slow: bool | None = None) -> None:
        """To the `<symbol>@depth...` subscribers of one cadence (None: of both)."""
        self.diffs_sent += 1
        base = symbol.lower() + "@depth"
        for conn in list(self.connections):
            if isinstance(conn, MarketConnection):
                for stream in list(conn.streams):
                    cadence = _depth_cadence(stream, base)
                    if cadence is not None and (slow is None or cadence == slow):
                        conn.deliver(stream, event)

    def _deliver(self, stream: str, event: bytes) -> None:
        for conn in list(self.connections):
            if isinstance(conn, MarketConnection):
                conn.deliver(stream, event)

    def drop_all(self) -> None:
        for conn in list(self.connections):
            conn.drop()

    async def serve(self, host: str, port: int) -> asyncio.Server:
        # No server pings: picows 2.3.1's server drops every connection when enable_auto_ping is on.
        return await ws_create_server(self.route, host, port, websocket_handshake_timeout=5)

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.publish()
            except Exception:  # one bad push must not silence every stream for good
                log.exception("publishing market data failed")



def _depth_cadence(stream: str, base: str) -> bool | None:
    """For a `<symbol>@depth...` stream: True on the 1 s cadence, False on the fast one; else None."""
    if stream in (base, base + "@1000ms"):
        return True
    return False if stream.startswith(base + "@") else None


def _merge(older: Diff | None, newer: Diff) -> Diff:
    """Two consecutive diffs as one (the later size of a level wins), as a slower stream sends them."""
    if older is None:
        return newer
    bids, asks = dict(older.bids), dict(older.asks)
    bids.update(newer.bids)
    asks.update(newer.asks)
    return Diff(newer.symbol, older.first_id, newer.last_id, sorted(bids.items(), reverse=True), sorted(asks.items()))
