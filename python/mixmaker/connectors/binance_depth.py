"""Binance spot's diff-depth stream over picows, straight into a `BookSync`.

Each WebSocket frame's bytes go to `BookSync.on_message`, so Rust parses them, checks the
`U`/`u` chain and applies them; Python never builds an object per level. The book is never
trusted across a gap:
- on (re)connect the sync is reset and a REST snapshot (through the account's rate limiter)
  bridges the diffs buffered meanwhile;
- on any gap, crossed book or unreadable message BookSync reports DESYNCED, its readers get
  "not ready", and a fresh snapshot brings it back;
- a snapshot older than the buffered diffs is fetched again, as Binance's procedure says;
- a dropped connection is reconnected with exponential backoff and jitter, and picows pings
  an idle connection so a silent one is noticed;
- after `degrade_after` failed connects in a row the stream is *degraded*: it keeps trying,
  and meanwhile polls REST snapshots every `poll_interval_s` so the book stays current (and
  `stats.degraded` says so, with a warning in the log).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from picows import WSTransport

from mixmaker.book import BookState, BookSync
from mixmaker.connectors import binance_limits as bl
from mixmaker.connectors.backoff import Backoff
from mixmaker.connectors.limiter import Priority, RateLimiter
from mixmaker.connectors.reconnect import ReconnectingSocket
from mixmaker.errors import MixmakerError

log = logging.getLogger(__name__)


@dataclass
class DepthStreamStats:
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    frames: int = 0
    snapshots: int = 0
    snapshot_errors: int = 0
    degraded: bool = False
    last_error: str | None = None


class SnapshotError(MixmakerError):
    """A depth snapshot could not be fetched (HTTP status or transport error)."""


class DepthStream(ReconnectingSocket):
    """Keeps `sync` live for one symbol. `await run()` until `close()`."""

    def __init__(
        self,
        sync: BookSync,
        symbol: str,
        *,
        ws_url: str,
        rest_url: str,
        limiter: RateLimiter,
        stream: str = "depth@100ms",
        snapshot_limit: int = 1000,
        backoff_s: float = 0.2,
        backoff_max_s: float = 30.0,
        degrade_after: int = 3,
        poll_interval_s: float = 5.0,
        ping_idle_s: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self.sync = sync
        self.symbol = symbol.upper()
        super().__init__(f"{ws_url.rstrip('/')}/ws/{self.symbol.lower()}@{stream}",
                         backoff=Backoff(backoff_s, backoff_max_s, seed), ping_idle_s=ping_idle_s)
        self.snapshot_url = f"{rest_url.rstrip('/')}/api/v3/depth?symbol={self.symbol}&limit={snapshot_limit}"
        self.snapshot_weight = bl.depth_weight(snapshot_limit)
        self.limiter = limiter
        self.backoff_s = backoff_s
        self.degrade_after = degrade_after
        self.poll_interval_s = poll_interval_s
        self.stats = DepthStreamStats()
        self._need_snapshot = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        self._session = aiohttp.ClientSession()
        resync = asyncio.create_task(self._resync_loop())
        try:
            await super().run()
        finally:
            resync.cancel()
            await asyncio.gather(resync, return_exceptions=True)
            await self._session.close()

    async def _on_connected(self, transport: WSTransport) -> None:
        if self.stats.degraded:
            log.warning("%s depth stream: connected again, leaving degraded mode", self.symbol)
        self.stats.degraded = False
        self.stats.connects += 1
        # Diffs were missed while disconnected: start over from a snapshot.
        self.sync.reset()
        self._need_snapshot.set()

    async def _on_failure(self, error: Exception, failures: int) -> None:
        self.stats.connect_failures += 1
        self.stats.last_error = f"connect: {type(error).__name__}: {error}"
        if failures >= self.degrade_after and not self.stats.degraded:
            self.stats.degraded = True
            log.warning("%s depth stream: %d connects failed in a row; polling REST snapshots every %.1fs "
                        "until the stream is back", self.symbol, failures, self.poll_interval_s)

    def _on_disconnected(self) -> None:
        self.stats.disconnects += 1

    # ------------------------------------------------------------------ frames
    def _on_frame(self, raw: bytes) -> None:
        self.stats.frames += 1
        state = self.sync.on_message(raw)
        if state != BookState.SYNCED:
            self._need_snapshot.set()

    # ------------------------------------------------------------------ snapshots
    async def _resync_loop(self) -> None:
        while True:
            await self._need_snapshot.wait()
            self._need_snapshot.clear()
            try:
                raw = await self.fetch_snapshot()
            except SnapshotError as e:
                self.stats.snapshot_errors += 1
                self.stats.last_error = str(e)
                await asyncio.sleep(self._backoff.delay(1))
                self._need_snapshot.set()
                continue
            if self.sync.on_snapshot(raw) != BookState.SYNCED and self._transport is not None:
                # Older than the buffered diffs (or a gap right after it): ask again shortly.
                await asyncio.sleep(self.backoff_s)
                self._need_snapshot.set()

    async def fetch_snapshot(self) -> bytes:
        """GET /api/v3/depth through the rate limiter; raw bytes for BookSync."""
        assert self._session is not None, "run() opens the session"
        # Tracked from admission to answer: it holds one of the account's in-flight slots.
        async with self.limiter.request({bl.REQUEST_WEIGHT: self.snapshot_weight, bl.RAW_REQUESTS: 1}, Priority.QUERY) as req:
            try:
                async with self._session.get(self.snapshot_url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                    req.answered()
                    body = await r.read()
                    for pool, used in bl.usage_from_headers(r.headers).items():
                        self.limiter.observe_used(pool, used)
                    if r.status in (418, 429):
                        self.limiter.rate_limited(bl.retry_after_s(r.status, r.headers, body.decode(errors="replace"), 0),
                                                  banned=r.status == 418)
                    if r.status != 200:
                        raise SnapshotError(f"{self.symbol} snapshot: HTTP {r.status}: {body[:200]!r}")
            except (TimeoutError, aiohttp.ClientError) as e:
                raise SnapshotError(f"{self.symbol} snapshot: {type(e).__name__}: {e}") from None
        self.limiter.succeeded()
        self.stats.snapshots += 1
        return body

    async def _wait_to_retry(self, failures: int) -> None:
        delay = self._backoff.delay(failures)
        if not self.stats.degraded:
            await asyncio.sleep(delay)
            return
        # Degraded: keep the book current from REST while the stream is away.
        self.sync.reset()
        try:
            self.sync.on_snapshot(await self.fetch_snapshot())
        except SnapshotError as e:
            self.stats.snapshot_errors += 1
            self.stats.last_error = str(e)
        await asyncio.sleep(min(delay, self.poll_interval_s))
