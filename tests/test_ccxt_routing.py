"""The real ccxt binance class, routed through our rate limiter, against a small local server
that answers like Binance's rate limiting: usage headers, 429 with Retry-After, and a 418 ban
for anyone who keeps sending during the Retry-After."""

from __future__ import annotations

import asyncio

import pytest

ccxt = pytest.importorskip("ccxt.async_support", reason="ccxt is a project dependency; install the package with it")
web = pytest.importorskip("aiohttp.web", reason="aiohttp comes with ccxt")

from mixmaker.connectors import Pool, RateLimiter  # noqa: E402
from mixmaker.connectors import binance_limits as bl  # noqa: E402
from mixmaker.connectors.ccxt_routing import route_through  # noqa: E402


class LimitServer:
    """Answers /api/v3/{ping,order,depth}; counts weight like Binance; can be told to 429."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, str]] = []  # (method, path) in arrival order
        self.weight = 0
        self.answer_429: int = 0  # how many of the next requests get a 429
        self.retry_after_s = 0.0
        self.banned_until = 0.0
        self.retry_until = 0.0
        self.statuses: list[int] = []
        self.hold = asyncio.Event()  # requests wait for this before answering (to queue callers)
        self.hold.set()

    async def handle(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.arrivals.append((request.method, request.path))
        await self.hold.wait()
        if now < self.retry_until or now < self.banned_until:
            # Binance bans an IP that keeps sending after a 429.
            self.banned_until = now + 60
            return self._answer(418, {"code": -1003, "msg": "Way too much request weight used; IP banned until 9999999999999."})
        if self.answer_429:
            self.answer_429 -= 1
            self.retry_until = now + self.retry_after_s
            return self._answer(429, {"code": -1003, "msg": "Too much request weight used."},
                                {"Retry-After": str(self.retry_after_s)})
        self.weight += 1
        body = {"orderId": 1, "status": "NEW"} if request.path.endswith("/order") else {}
        return self._answer(200, body, {"X-MBX-USED-WEIGHT-1M": str(self.weight)})

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> web.Response:
        self.statuses.append(status)
        return web.json_response(body, status=status, headers=headers)


async def serve(server: LimitServer):
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/api/v3"


def exchange(base: str):
    return ccxt.binance({
        "apiKey": "test-key",
        "secret": "test-secret",
        "urls": {"api": {"public": base, "private": base}},
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
    })


def run(coro):
    return asyncio.run(coro)


def routed(base: str, pools: list[Pool], **limiter_kw):
    ex = exchange(base)
    lim = RateLimiter(pools, seed=5, **limiter_kw)
    route_through(ex, lim, cost=bl.request_cost, usage=bl.usage_from_headers, retry_after=bl.retry_after_s)
    return ex, lim


def test_queued_requests_reach_the_venue_cancels_first_then_creates_then_queries():
    async def go():
        srv = LimitServer()
        runner, base = await serve(srv)
        # One weight unit per 0.1 s: everything after the first call queues in the limiter.
        ex, lim = routed(base, [Pool(bl.REQUEST_WEIGHT, 1, 0.1), Pool(bl.RAW_REQUESTS, 100, 1.0),
                                Pool(bl.ORDERS_10S, 10, 10.0), Pool(bl.ORDERS_1D, 100, 60.0)])
        try:
            await ex.public_get_ping()
            order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "1",
                     "timeInForce": "GTC"}
            calls = [ex.public_get_ping(), ex.private_post_order(dict(order)),
                     ex.private_delete_order({"symbol": "BTCUSDT", "orderId": 1}), ex.public_get_ping(),
                     ex.private_post_order(dict(order))]
            tasks = [asyncio.create_task(c) for c in calls]
            await asyncio.sleep(0.01)
            assert lim.stats.queued == 5
            await asyncio.gather(*tasks)
        finally:
            await ex.close()
            await runner.cleanup()
        return srv, lim

    srv, lim = run(go())
    assert [m for m, _ in srv.arrivals] == ["GET", "DELETE", "POST", "POST", "GET", "GET"]
    assert lim.stats.admitted == 6 and lim.stats.max_queued == 5
    assert set(srv.statuses) == {200}


def test_the_venue_usage_header_raises_the_limiter_count():
    async def go():
        srv = LimitServer()
        srv.weight = 40  # someone else on this IP already used 40
        runner, base = await serve(srv)
        ex, lim = routed(base, bl.spot_pools())
        try:
            await ex.public_get_ping()
        finally:
            await ex.close()
            await runner.cleanup()
        return lim

    lim = run(go())
    assert lim.stats.used[bl.REQUEST_WEIGHT] == 41


def test_after_a_429_nobody_sends_until_retry_after_so_the_venue_never_bans():
    async def go():
        srv = LimitServer()
        srv.answer_429, srv.retry_after_s = 1, 0.2
        runner, base = await serve(srv)
        ex, lim = routed(base, bl.spot_pools())
        try:
            with pytest.raises(ccxt.DDoSProtection):
                await ex.public_get_ping()
            # Twenty callers at once, straight after the 429: all held until Retry-After.
            results = await asyncio.gather(*(ex.public_get_ping() for _ in range(20)), return_exceptions=True)
        finally:
            await ex.close()
            await runner.cleanup()
        return srv, lim, results

    srv, lim, results = run(go())
    assert [r for r in results if isinstance(r, Exception)] == []
    assert 418 not in srv.statuses
    assert srv.statuses.count(429) == 1 and srv.statuses.count(200) == 20
    assert lim.stats.rate_limited == 1


def test_a_request_holds_its_in_flight_slot_until_its_answer_arrives():
    async def go():
        srv = LimitServer()
        srv.hold.clear()  # answers wait: the first request stays on the wire
        runner, base = await serve(srv)
        ex, lim = routed(base, bl.spot_pools(), max_in_flight=1)
        try:
            calls = [asyncio.create_task(ex.public_get_ping()) for _ in range(3)]
            for _ in range(50):
                await asyncio.sleep(0.01)
            assert len(srv.arrivals) == 1 and lim.stats.in_flight == 1 and lim.stats.queued == 2
            srv.hold.set()
            await asyncio.gather(*calls)
        finally:
            await ex.close()
            await runner.cleanup()
        return srv, lim

    srv, lim = run(go())
    assert len(srv.arrivals) == 3 and lim.stats.max_in_flight == 1 and lim.stats.in_flight == 0
    # Each one's weight counts until a window after its answer.
    assert lim.stats.used[bl.REQUEST_WEIGHT] == 3


def test_a_request_that_times_out_frees_its_slot_and_still_counts_as_possibly_arriving():
    async def go():
        srv = LimitServer()
        srv.hold.clear()
        runner, base = await serve(srv)
        ex, lim = routed(base, bl.spot_pools(), max_in_flight=1, unanswered_s=5.0)
        ex.timeout = 100  # ms
        try:
            with pytest.raises(ccxt.RequestTimeout):
                await ex.public_get_ping()
            srv.hold.set()
            await ex.public_get_ping()  # the slot came back
        finally:
            await ex.close()
            await runner.cleanup()
        return lim

    lim = run(go())
    assert lim.stats.unanswered == 1 and lim.stats.in_flight == 0 and lim.stats.admitted == 2


def test_a_429_holds_back_the_request_queued_behind_it_until_retry_after():
    """With one in flight, the request waiting for the slot goes only after the Retry-After of
    the 429 that freed it: the limiter hears the 429 before it frees the slot."""

    async def go():
        srv = LimitServer()
        srv.answer_429, srv.retry_after_s = 1, 0.3
        runner, base = await serve(srv)
        ex, lim = routed(base, bl.spot_pools(), max_in_flight=1)
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def ping() -> None:
            try:
                await ex.public_get_ping()
            except ccxt.DDoSProtection:
                pass
            times.append(loop.time())

        try:
            await asyncio.gather(ping(), ping())
        finally:
            await ex.close()
            await runner.cleanup()
        return srv, times

    srv, times = run(go())
    assert srv.statuses == [429, 200], "the second never reached the venue inside the Retry-After"
    assert times[1] - times[0] >= 0.29


def test_without_the_limiter_the_same_burst_gets_banned():
    """The control for the test above: the server's ban rule is real."""

    async def go():
        srv = LimitServer()
        srv.answer_429, srv.retry_after_s = 1, 0.2
        runner, base = await serve(srv)
        ex = exchange(base)
        ex.enableRateLimit = False
        try:
            with pytest.raises(ccxt.DDoSProtection):
                await ex.public_get_ping()
            await asyncio.gather(*(ex.public_get_ping() for _ in range(5)), return_exceptions=True)
        finally:
            await ex.close()
            await runner.cleanup()
        return srv

    assert 418 in run(go()).statuses


def test_routing_twice_is_refused():
    async def go():
        ex, lim = routed("http://127.0.0.1:9/api/v3", bl.spot_pools())
        try:
            with pytest.raises(ValueError, match="already routed"):
                route_through(ex, lim, cost=bl.request_cost, usage=bl.usage_from_headers, retry_after=bl.retry_after_s)
        finally:
            await ex.close()

    run(go())


@pytest.mark.parametrize(
    "api, method, path, cost, want",
    [
        ("public", "GET", "depth", 10, (bl.Priority.QUERY, {bl.REQUEST_WEIGHT: 50, bl.RAW_REQUESTS: 1})),
        ("private", "POST", "order", 0.2, (bl.Priority.CREATE, {bl.REQUEST_WEIGHT: 1, bl.RAW_REQUESTS: 1,
                                                                 bl.ORDERS_10S: 1, bl.ORDERS_1D: 1})),
        ("private", "DELETE", "order", 0.2, (bl.Priority.CANCEL, {bl.REQUEST_WEIGHT: 1, bl.RAW_REQUESTS: 1})),
        ("private", "DELETE", "openOrders", 0.2, (bl.Priority.CANCEL, {bl.REQUEST_WEIGHT: 1, bl.RAW_REQUESTS: 1})),
        ("private", "GET", "openOrders", 16, (bl.Priority.QUERY, {bl.REQUEST_WEIGHT: 80, bl.RAW_REQUESTS: 1})),
        ("sapi", "POST", "capital/withdraw/apply", 0.1, (bl.Priority.QUERY, {bl.SAPI_WEIGHT: 1})),
    ],
)
def test_binance_request_costs(api, method, path, cost, want):
    assert bl.request_cost(api, method, path, cost) == want


def test_binance_headers_and_ban_bodies():
    assert bl.usage_from_headers({"X-MBX-USED-WEIGHT-1M": "12", "x-mbx-order-count-10s": "3",
                                  "X-MBX-ORDER-COUNT-1D": "bad", "Content-Type": "x"}) == {
        bl.REQUEST_WEIGHT: 12, bl.ORDERS_10S: 3}
    assert bl.retry_after_s(429, {"Retry-After": "7"}, "", 0) == 7.0
    assert bl.retry_after_s(418, {}, '{"msg":"IP banned until 1700000060000."}', 1_700_000_000_000) == 60.0
    assert bl.retry_after_s(429, {}, "", 0) is None
    pools = bl.pools_from_exchange_info([
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    ])
    assert [(p.name, p.limit, p.window_s) for p in pools[:2]] == [(bl.REQUEST_WEIGHT, 6000, 60.0), (bl.ORDERS_10S, 100, 10.0)]
    with pytest.raises(ValueError, match="not understood"):
        bl.pools_from_exchange_info([{"rateLimitType": "ORDERS", "interval": "FORTNIGHT", "intervalNum": 1, "limit": 1}])
