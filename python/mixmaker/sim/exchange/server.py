"""The simulator as one object: REST (aiohttp) + WebSocket (picows) servers around one venue.

    async with ExchangeSim(SimConfig(seed=1)) as sim:
        sim.add_account("alice", "key", "secret", {"USDT": "10000"})
        ex = ccxt.async_support.binance(sim.ccxt_config("key", "secret"))

Ports default to free ones on 127.0.0.1; `rest_url`/`ws_url` say where it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from aiohttp import web

from mixmaker.sim.exchange import wire
from mixmaker.sim.exchange.faults import Faults
from mixmaker.sim.exchange.limits import OrderCounter, WeightLimiter
from mixmaker.sim.exchange.matching import Order, SymbolRules
from mixmaker.sim.exchange.operations import DEFAULT_RULES, Venue, wall_ms
from mixmaker.sim.exchange.rest import RestApi
from mixmaker.sim.exchange.ws import StreamHub


class MarketFeed(Protocol):
    """Other participants' activity: drives `venue.set_market_level`/`market_trade` until done."""

    async def run(self, venue: Venue) -> None: ...


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    rest_port: int = 0  # 0: a free port
    ws_port: int = 0
    seed: int = 0
    faults: str = ""  # `name=rate[@delay],...`, see faults.FAULTS
    publish_interval: float = 0.1  # seconds between depth diffs (Binance's @100ms)
    weight_limit: int = 6000  # REQUEST_WEIGHT per minute
    ban_ms: int = 120_000  # first 418 ban; doubles for each further one
    ban_tolerance: int = 0  # requests inside a Retry-After answered 429 before the ban (see limits.py)
    order_limit: int = 100  # new orders per account per 10 s
    # How long Binance's 1-minute weight and 10-second order intervals last here. Shorter ones
    # compress time, so a test crosses many interval edges quickly; names stay Binance's.
    weight_window_ms: int = 60_000
    order_window_ms: int = 10_000
    clock_offset_ms: int = 0  # the venue's clock minus ours: skew for clients' time sync
    withdraw_delay_ms: int = 0  # withdrawals report "processing" this long, then "completed"
    withdraw_fees: Mapping[str, Decimal] = field(default_factory=dict)  # coin -> network fee per withdrawal
    keep_books: int = 0  # remember this many top levels of every published state (book_at); 0: off
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    rules: tuple[SymbolRules, ...] = DEFAULT_RULES
    feed: MarketFeed | None = None


class ExchangeSim:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = cfg = config or SimConfig()
        self.faults = Faults(cfg.seed)
        self.faults.configure(cfg.faults)
        self.limiter = WeightLimiter(cfg.weight_limit, cfg.ban_ms, cfg.ban_tolerance, cfg.weight_window_ms)
        self.order_counter = OrderCounter(cfg.order_limit, cfg.order_window_ms)
        self.clock_offset_ms = cfg.clock_offset_ms  # may be changed while running
        self.venue = Venue(cfg.rules, cfg.maker_fee, cfg.taker_fee, self.faults, self._clock)
        self.venue.weight_limit, self.venue.order_limit = cfg.weight_limit, cfg.order_limit
        self.venue.withdraw_delay_ms = cfg.withdraw_delay_ms
        self.venue.capital.withdraw_fees = {coin: Decimal(fee) for coin, fee in cfg.withdraw_fees.items()}
        if cfg.keep_books:
            self.venue.engine.keep_history(cfg.keep_books)
        self.rest = RestApi(self.venue, self.faults, self.limiter, self.order_counter)
        self.hub = StreamHub(self.venue, self.faults, self.limiter, self.order_counter, cfg.publish_interval)
        self.rest_port = 0
        self.ws_port = 0
        self.feed_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._ws_server: asyncio.AbstractServer | None = None
        self._publisher: asyncio.Task[None] | None = None

    def _clock(self) -> int:
        return wall_ms() + self.clock_offset_ms

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> ExchangeSim:
        cfg = self.config
        # handler_cancellation: a client that gave up (act_then_timeout) must not pin a handler.
        # shutdown_timeout: stopping must not wait for a held answer (act_then_timeout) to finish.
        self._runner = web.AppRunner(self.rest.app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.rest_port)
        await site.start()
        self.rest_port = self._runner.addresses[0][1]
        self._ws_server = await self.hub.serve(cfg.host, cfg.ws_port)
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        self._publisher = asyncio.create_task(self.hub.run(cfg.publish_interval))
        if cfg.feed is not None:
            self.feed_task = asyncio.create_task(cfg.feed.run(self.venue))
        return self

    async def stop(self) -> None:
        for task in (self.feed_task, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.hub.drop_all()
        if self._ws_server is not None:
            self._ws_server.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> ExchangeSim:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- where it listens --------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.ws_port}"

    def ccxt_config(self, api_key: str, api_secret: str, **options: Any) -> dict[str, Any]:
        """Constructor config that points ccxt's binance (REST and pro) at this simulator only."""
        rest, ws = self.rest_url, self.ws_url
        return {
            "apiKey": api_key,
            "secret": api_secret,
            "urls": {
                "api": {
                    "public": f"{rest}/api/v3",
                    "private": f"{rest}/api/v3",
                    "sapi": f"{rest}/sapi/v1",
                    "ws": {"spot": f"{ws}/stream/ws", "ws-api": {"spot": f"{ws}/ws-api/v3"}},
                }
            },
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchOpenOrders": {"warnWithoutSymbol": False},
                "warnOnFetchOpenOrdersWithoutSymbol": False,
                **options,
            },
        }

    # ---- setup and inspection (tests, the CLI) -------------------------------------------------

    def add_account(self, account: str, api_key: str, api_secret: str, balances: Mapping[str, str | Decimal] = {}) -> None:
        self.venue.add_account(account, api_key, api_secret, balances)

    def balance(self, account: str, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked)."""
        return self.venue.balance(account, asset)

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        return self.venue.engine.open_orders(account, symbol)

    def book(self, symbol: str, limit: int = 1000) -> tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(lastUpdateId, bids best first, asks best first): what a snapshot would say now."""
        return self.venue.engine.depth(symbol, limit)

    def book_at(self, symbol: str, update_id: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]] | None:
        """Top `SimConfig.keep_books` levels (bids, asks) at `update_id`: what a synced client must hold."""
        return self.venue.engine.book_at(symbol, update_id)

    def publish_now(self) -> None:
        """Push pending diffs (on every cadence) and trades without waiting for the next interval."""
        self.hub.publish(flush=True)

    def burst(self, symbol: str, steps: Iterable[object]) -> list[bytes]:
        """Advance the market through `steps` now and return one serialized `depthUpdate` per step
        that changed the book, chained on from what was already sent, but not sent yet.

        For throughput benchmarks: sync clients first, build the burst, then `send_burst` it, so
        the stream runs at socket speed instead of engine speed. No feed may run meanwhile (its
        diffs would overtake the burst's). Example: `sim.burst("BTCUSDT", RecordedFeed(path).steps(sim.venue))`.
        """
        self.publish_now()  # the burst continues the chain from what clients already have
        engine, now, out = self.venue.engine, self.venue.clock(), []
        for _ in steps:
            diff = engine.take_diff(symbol)
            if diff is not None:
                out.append(wire.dumps(wire.depth_update(diff, now)))
        return out

    async def send_burst(self, symbol: str, payloads: list[bytes], yield_every: int = 64) -> None:
        """Send a burst to every `<symbol>@depth...` subscriber as fast as the sockets take it (no faults)."""
        for i, payload in enumerate(payloads):
            self.hub.deliver_depth(symbol, payload)
            if i % yield_every == yield_every - 1:
                await asyncio.sleep(0)  # let a client in this process read
