"""The simulated world in one process: the exchange simulator with a moving market, the Mixin
simulator, and the chain between them, durable in a state folder (`mixmaker sim all`).

    DIR/sims.json    where they listen and how to log in (bot keystore, exchange API key and
                     secret); mode 600; rewritten at every start (with the process id)
    DIR/state.json   everything they hold, replaced atomically whenever it changed (checked
                     every `persist_interval_s`, and at a clean stop)
    DIR/lock         held while running: one world per folder

Started again on the same folder, the world is as it was: Mixin users, outputs, snapshots,
requests and deposit entries; the exchange account's balances, orders (open ones back on the
book), trades, deposits, withdrawals and deposit addresses; the chain's moves in flight with
their faults; the same ports and credentials. What a state file leaves out is listed in
`mixmaker.sim.mixin.persist` and `mixmaker.sim.exchange.persist` (chiefly: other participants'
liquidity, which the feed rebuilds from the last mid). A hard kill loses at most the changes of
the last `persist_interval_s` (longer for a big state: saving takes at most ~10% of the time).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from mixmaker.errors import MixmakerError
from mixmaker.mixin import curve
from mixmaker.sim import statefile
from mixmaker.sim.chain import control
from mixmaker.sim.chain.engine import Chain
from mixmaker.sim.chain.model import ChainConfig
from mixmaker.sim.exchange import persist as exchange_persist
from mixmaker.sim.exchange.feed import RecordedFeed, SyntheticFeed
from mixmaker.sim.exchange.server import ExchangeSim, SimConfig
from mixmaker.sim.mixin import persist as mixin_persist
from mixmaker.sim.mixin.server import MixinSimServer
from mixmaker.sim.mixin.setup import new_bot, seeded_world
from mixmaker.sim.mixin.state import SimState

STATE_FILE, CREDENTIALS_FILE, LOCK_FILE = "state.json", "sims.json", "lock"
FORMAT = 1
HOST = "127.0.0.1"
DEFAULT_WITHDRAW_FEES = {"BTC": Decimal("0.0002"), "ETH": Decimal("0.002"), "USDT": Decimal("1")}
DEFAULT_MIDS = {"BTCUSDT": Decimal("60000"), "ETHUSDT": Decimal("3000")}


class WorldError(MixmakerError):
    """The simulated world cannot start as asked (folder in use, unreadable state, bad feed)."""


@dataclass
class WorldConfig:
    state_dir: Path
    seed: int = 1
    feed: str = "synthetic"  # "synthetic", "none", or a recording that drives `feed_symbol`
    feed_symbol: str = "BTCUSDT"
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")  # each without a recording gets a synthetic market
    speed: float = 1.0  # a recording's replay speed
    # 0: the port of the last run in this folder, else any free one.
    mixin_port: int = 0
    exchange_port: int = 0
    exchange_ws_port: int = 0
    chain_port: int = 0
    account: str = "mm"  # the bot's exchange account
    balances: dict[str, Decimal] = field(default_factory=dict)  # its balances at the very first start
    withdraw_fees: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_WITHDRAW_FEES))
    chain: ChainConfig = field(default_factory=ChainConfig)
    persist_interval_s: float = 0.1


class SimWorld:
    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.dir = Path(config.state_dir)
        self.mixin_state: SimState | None = None
        self.mixin: MixinSimServer | None = None
        self.exchange: ExchangeSim | None = None
        self.chain: Chain | None = None
        self.credentials: dict[str, Any] = {}
        self.starts = 0  # how often this folder's world has started (this start included)
        self._lock_fd: int | None = None
        self._control: web.AppRunner | None = None
        self._chain_port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._saved: tuple[int, int, int] | None = None
        self._feed_tasks_for: dict[str, Any] = {}
        self._save_cost_s = 0.0
        self._writing: asyncio.Future[None] | None = None
        self.crashed: asyncio.Future[str] | None = None  # resolves with the reason if a part of the world died

    # ---- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> SimWorld:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            saved = self._build()
            await self._serve(saved)
        except BaseException:
            await self.stop()
            raise
        return self

    def _build(self) -> dict[str, Any]:
        """The three parts, as the folder left them (or new); returns the last credentials file."""
        cfg = self.config
        try:
            doc = statefile.read(self.dir / STATE_FILE)
            saved = statefile.read(self.dir / CREDENTIALS_FILE) or {}
        except statefile.StateFileError as e:
            raise WorldError(str(e)) from None
        if doc is not None and not saved:
            raise WorldError(f"{self.dir}: {STATE_FILE} without {CREDENTIALS_FILE}: the credentials are gone; "
                             "move the folder away to start afresh")
        self.starts = (doc or {}).get("starts", 0) + 1
        self.credentials = self._credentials(saved)
        if not saved:  # the keys are durable before anything is made with them
            statefile.write_atomic(self.dir / CREDENTIALS_FILE, {"format": FORMAT, **self.credentials})
        state = seeded_world(cfg.seed)
        ex = self.credentials["exchange"]
        self.exchange = ExchangeSim(SimConfig(
            host=HOST, rest_port=self._port(cfg.exchange_port, saved, "exchange", "rest_port"),
            ws_port=self._port(cfg.exchange_ws_port, saved, "exchange", "ws_port"), seed=cfg.seed,
            withdraw_fees=cfg.withdraw_fees, feed=None))
        self.exchange.add_account(ex["account"], ex["api_key"], ex["api_secret"], cfg.balances if doc is None else {})
        try:
            if doc is not None:
                mixin_persist.load(state, doc["mixin"])
                exchange_persist.load(self.exchange.venue, doc["exchange"])
            self.chain = Chain.in_process(state, self.exchange.venue, cfg.chain)  # the venues hand it their withdrawals
            if doc is not None:
                self.chain.load(doc["chain"])
        except (KeyError, TypeError, ValueError, MixmakerError) as e:
            raise WorldError(f"{self.dir / STATE_FILE}: cannot restore it ({type(e).__name__}: {e}); "
                             "move the folder away to start afresh") from None
        # The bot is the credentials file's, whether or not the state had been saved with it.
        self._register_bot(state, self.credentials["mixin"]["keystore"])
        self.mixin_state = state
        self.mixin = MixinSimServer(state, seed=cfg.seed, host=HOST, port=self._port(cfg.mixin_port, saved, "mixin", "port"))
        self._feed_tasks_for = self._feeds((doc or {}).get("market", {}))
        return saved

    async def _serve(self, saved: dict[str, Any]) -> None:
        assert self.mixin is not None and self.exchange is not None and self.chain is not None
        await self.mixin.serve()
        await self.exchange.start()
        self._control, self._chain_port = await control.serve(self.chain, HOST,
                                                              self._port(self.config.chain_port, saved, "chain", "port"))
        self._tasks = [asyncio.create_task(self.chain.run(), name="chain"),
                       *(asyncio.create_task(f.run(self.exchange.venue), name=f"feed {s}")
                         for s, f in self._feed_tasks_for.items())]
        self.save()
        statefile.write_atomic(self.dir / CREDENTIALS_FILE, self.describe())  # ready: where, and who
        self._tasks.append(asyncio.create_task(self._persist_loop(), name="persist"))
        self.crashed = asyncio.get_running_loop().create_future()
        for task in self._tasks:
            task.add_done_callback(self._died)

    def _died(self, task: asyncio.Task[None]) -> None:
        """A chain, feed or persister that fails is a broken world: say so, never limp on. (A
        recording that has played to its end is not a failure: the market just stops moving.)"""
        if task.cancelled() or self.crashed is None or self.crashed.done() or task.exception() is None:
            return
        error = task.exception()
        self.crashed.set_result(f"{task.get_name()} failed: {type(error).__name__}: {error}")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure was reported by `_died`
                await task
        self._tasks = []
        if self._writing is not None:  # a write the persister had started finishes first
            with contextlib.suppress(Exception):
                await self._writing
        if self._saved is not None:  # only a world that started saves (never a half-started one)
            self.save()
        if self._control is not None:
            await self._control.cleanup()
        if self.exchange is not None:
            await self.exchange.stop()
        if self.mixin is not None:
            await self.mixin.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def __aenter__(self) -> SimWorld:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- what others need to know -----------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The credentials file: where each simulator listens and how to log in."""
        assert self.mixin is not None and self.exchange is not None
        ex = self.credentials["exchange"]
        ccxt = self.exchange.ccxt_config("", "")
        return {
            "format": FORMAT, "pid": os.getpid(), "started_at": time.time(), "state_dir": str(self.dir.resolve()),
            "mixin": {"url": self.mixin.url, "port": self.mixin.port, "keystore": self.credentials["mixin"]["keystore"]},
            "exchange": {"rest_url": self.exchange.rest_url, "ws_url": self.exchange.ws_url,
                         "rest_port": self.exchange.rest_port, "ws_port": self.exchange.ws_port,
                         "account": ex["account"], "api_key": ex["api_key"], "api_secret": ex["api_secret"],
                         "ccxt_urls": ccxt["urls"], "ccxt_options": ccxt["options"]},
            "chain": {"url": f"http://{HOST}:{self._chain_port}", "port": self._chain_port},
        }

    # ---- durability ---------------------------------------------------------------------------------

    def _versions(self) -> tuple[int, int, int]:
        assert self.mixin_state is not None and self.exchange is not None and self.chain is not None
        return self.mixin_state.version, self.exchange.venue.version, self.chain.version

    def _cut(self) -> tuple[tuple[int, int, int], dict[str, Any]]:
        """One consistent cut of all three, taken between two events of the loop: plain values
        only, so it can be written while the simulators go on."""
        assert self.mixin_state is not None and self.exchange is not None and self.chain is not None
        return self._versions(), {
            "format": FORMAT, "saved_at": time.time(), "starts": self.starts, "market": self._mids(),
            "mixin": mixin_persist.dump(self.mixin_state), "exchange": exchange_persist.dump(self.exchange.venue),
            "chain": self.chain.dump()}

    def save(self) -> None:
        versions, doc = self._cut()
        statefile.write_atomic(self.dir / STATE_FILE, doc)
        self._saved = versions

    async def _persist_loop(self) -> None:
        while True:
            # A big state (a long run's order history) is saved less often, so that saving never
            # takes more than about a tenth of the time.
            await asyncio.sleep(max(self.config.persist_interval_s, 10 * self._save_cost_s))
            if self._versions() == self._saved:
                continue
            started = time.perf_counter()
            versions, doc = self._cut()
            # Encoding and fsync off the loop; `stop` waits for this write before its own.
            self._writing = asyncio.ensure_future(asyncio.to_thread(statefile.write_atomic, self.dir / STATE_FILE, doc))
            await asyncio.shield(self._writing)
            self._saved = versions
            self._save_cost_s = time.perf_counter() - started

    # ---- pieces ----------------------------------------------------------------------------------------

    def _lock(self) -> None:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WorldError(f"{self.dir} is in use by another `mixmaker sim all`") from None
        self._lock_fd = fd

    def _credentials(self, saved: dict[str, Any]) -> dict[str, Any]:
        if saved:
            return {"mixin": {"keystore": saved["mixin"]["keystore"]},
                    "exchange": {k: saved["exchange"][k] for k in ("account", "api_key", "api_secret")}}
        # A throwaway bot and API key for this folder (never the same across folders).
        scratch = seeded_world(secrets.randbits(64))
        return {"mixin": {"keystore": new_bot(scratch)},
                "exchange": {"account": self.config.account, "api_key": f"{self.config.account}-{secrets.token_hex(8)}",
                             "api_secret": secrets.token_hex(32)}}

    @staticmethod
    def _register_bot(state: SimState, keystore: dict[str, str]) -> None:
        if keystore["app_id"] in state.users and state.users[keystore["app_id"]].is_app:
            return
        state.add_app(keystore["app_id"], keystore["session_id"],
                      curve.public_from_seed(bytes.fromhex(keystore["session_private_key"])),
                      curve.public_from_seed(bytes.fromhex(keystore["spend_private_key"])))

    @staticmethod
    def _port(asked: int, saved: dict[str, Any], part: str, key: str) -> int:
        return asked or int((saved.get(part) or {}).get(key) or 0)

    def _feeds(self, mids: dict[str, str]) -> dict[str, Any]:
        cfg = self.config
        feeds: dict[str, Any] = {}
        if cfg.feed not in ("synthetic", "none"):
            if not Path(cfg.feed).is_file():
                raise WorldError(f"--feed {cfg.feed}: no such recording")
            feeds[cfg.feed_symbol] = RecordedFeed(cfg.feed, cfg.feed_symbol, speed=cfg.speed)
        if cfg.feed != "none":
            for n, symbol in enumerate(cfg.symbols):
                if symbol not in feeds and symbol in self.exchange.venue.engine.rules:  # type: ignore[union-attr]
                    mid = Decimal(mids[symbol]) if symbol in mids else DEFAULT_MIDS.get(symbol, Decimal(100))
                    # A restart walks on from where the market was, along a path of its own.
                    feeds[symbol] = SyntheticFeed(symbol, seed=cfg.seed * 1000 + self.starts * 10 + n, mid=mid)
        return feeds

    def _mids(self) -> dict[str, str]:
        assert self.exchange is not None
        out = {}
        for symbol, book in self.exchange.venue.engine.books.items():
            bid, ask = book.bids.best(), book.asks.best()
            if bid is not None and ask is not None:
                tick = self.exchange.venue.engine.rules[symbol].tick_size
                out[symbol] = str(((bid + ask) / 2).quantize(tick))
        return out
