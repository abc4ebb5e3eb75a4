"""Other participants' activity: a recorded Binance feed or a seeded synthetic market.

Both drive the venue through the market account only (`set_market_level` with the feed's
absolute level sizes, `market_trade` for prints), so our resting orders trade against the
moving market by price-time priority while the recorded or generated book stays the reference.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from mixmaker.replay.recording import open_recording
from mixmaker.sim.exchange.matching import BUY, SELL
from mixmaker.sim.exchange.operations import Venue

ZERO = Decimal(0)


def _apply_levels(venue: Venue, symbol: str, bids: list[Any], asks: list[Any]) -> None:
    """Shrinks before growth, so a level moving across the spread never meets a stale one."""
    rows = [(BUY, Decimal(p), Decimal(q)) for p, q in bids] + [(SELL, Decimal(p), Decimal(q)) for p, q in asks]
    rows.sort(key=lambda r: r[2] != 0)
    for side, price, qty in rows:
        venue.set_market_level(symbol, side, price, qty)


@dataclass
class RecordedFeed:
    """Replays a `<ts_ns> <json>` recording (see shared/data/market/README.md) into `symbol`.

    Diffs recorded before the snapshot are buffered and those the snapshot does not already hold
    (`u > lastUpdateId`) applied after it; from there every diff and trade is applied in file
    order. `run` paces by the events' `E` times divided by `speed` (0: as fast as the loop
    allows); `steps` applies them unpaced, one per iteration (for `ExchangeSim.burst`).
    """

    path: str | Path
    symbol: str = "BTCUSDT"
    speed: float = 1.0
    trades: bool = True  # replay prints as IOC orders (they can fill our resting orders)
    max_messages: int | None = None  # stop after this many lines of the file
    applied: int = 0  # messages applied so far (diffs, trades, the snapshot)

    def events(self) -> Iterator[dict[str, Any]]:
        """The recording's messages, unwrapped from the combined-stream envelope."""
        for n, raw in enumerate(open_recording(self.path).messages()):
            if self.max_messages is not None and n >= self.max_messages:
                return
            message = json.loads(raw)
            yield message.get("data", message) if isinstance(message, dict) else {}

    async def run(self, venue: Venue) -> None:
        last_ms: int | None = None
        for event_ms in self.steps(venue):
            last_ms = await self._pace(event_ms, last_ms)

    def steps(self, venue: Venue) -> Iterator[int | None]:
        """Apply the recording one message at a time; yields each applied message's `E` (ms)."""
        snapshot_id: int | None = None
        buffered: list[dict[str, Any]] = []  # diffs recorded before the snapshot line
        for event in self.events():
            if "lastUpdateId" in event and snapshot_id is None:
                snapshot_id = int(event["lastUpdateId"])
                _apply_levels(venue, self.symbol, event.get("bids", []), event.get("asks", []))
                for diff in buffered:
                    if int(diff["u"]) > snapshot_id:
                        _apply_levels(venue, self.symbol, diff.get("b", []), diff.get("a", []))
                        self.applied += 1
            elif snapshot_id is None:
                if event.get("e") == "depthUpdate":
                    buffered.append(event)
                continue
            elif event.get("e") == "depthUpdate" and int(event["u"]) > snapshot_id:
                _apply_levels(venue, self.symbol, event.get("b", []), event.get("a", []))
            elif event.get("e") == "trade" and self.trades:
                venue.market_trade(self.symbol, Decimal(event["p"]), Decimal(event["q"]), bool(event["m"]))
            else:
                continue
            self.applied += 1
            yield event.get("E")

    async def _pace(self, event_ms: Any, last_ms: int | None) -> int | None:
        if not isinstance(event_ms, int):
            await asyncio.sleep(0)
            return last_ms
        gap = 0.0 if last_ms is None or self.speed <= 0 else max(0, event_ms - last_ms) / 1000 / self.speed
        await asyncio.sleep(gap)
        return event_ms


@dataclass
class SyntheticFeed:
    """A seeded random-walk market: `depth` levels a side around a moving mid, sizes that churn,
    and prints at the touch. The same seed gives the same sequence of venue calls."""

    symbol: str = "BTCUSDT"
    seed: int = 0
    mid: Decimal = Decimal("60000")
    tick: Decimal = Decimal("0.01")
    lot: Decimal = Decimal("0.00001")
    depth: int = 20
    interval: float = 0.05  # seconds between steps
    trade_rate: float = 0.3  # chance of a print per step
    steps: int | None = None  # None: run until cancelled
    _rng: random.Random = field(init=False, repr=False)
    _mid: int = field(init=False, repr=False)  # in ticks
    _bids: dict[int, int] = field(init=False, repr=False, default_factory=dict)  # ticks -> lots
    _asks: dict[int, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._mid = int(self.mid / self.tick)

    async def run(self, venue: Venue) -> None:
        n = 0
        while self.steps is None or n < self.steps:
            self.step(venue)
            n += 1
            await asyncio.sleep(self.interval)

    def step(self, venue: Venue) -> None:
        """One move of the market: the mid drifts, the book follows, sizes churn, maybe a print."""
        rng = self._rng
        self._mid += rng.choice((-2, -1, 0, 0, 1, 2))
        want_bids = {t: self._bids.get(t) or self._size() for t in range(self._mid - self.depth, self._mid)}
        want_asks = {t: self._asks.get(t) or self._size() for t in range(self._mid + 1, self._mid + 1 + self.depth)}
        for book in (want_bids, want_asks):
            for t in rng.sample(sorted(book), 2):
                book[t] = self._size()
        bids = self._changes(self._bids, want_bids)
        asks = self._changes(self._asks, want_asks)
        self._bids, self._asks = want_bids, want_asks
        _apply_levels(venue, self.symbol, bids, asks)
        if rng.random() < self.trade_rate:
            self._print(venue)

    def _print(self, venue: Venue) -> None:
        buyer_is_maker = self._rng.random() < 0.5  # a seller hits the best bid
        book = self._bids if buyer_is_maker else self._asks
        t = max(book) if buyer_is_maker else min(book)
        lots = self._rng.randint(1, book[t])
        venue.market_trade(self.symbol, t * self.tick, lots * self.lot, buyer_is_maker)
        book[t] -= lots
        if book[t] == 0:
            del book[t]
        # What the print took from other participants is gone from their quote, as on a venue.
        level = [[t * self.tick, book.get(t, 0) * self.lot]]
        _apply_levels(venue, self.symbol, level if buyer_is_maker else [], [] if buyer_is_maker else level)

    def _size(self) -> int:
        return self._rng.randint(1, 50_000)  # lots of 0.00001: up to 0.5

    def _changes(self, old: dict[int, int], new: dict[int, int]) -> list[list[Decimal]]:
        rows = [[t * self.tick, ZERO] for t in old if t not in new]
        rows += [[t * self.tick, q * self.lot] for t, q in new.items() if old.get(t) != q]
        return rows
