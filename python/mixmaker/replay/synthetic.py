"""A deterministic synthetic Binance USD-M futures feed, for runs without any data files.

The stream looks like a real combined-stream recording (`depth@0ms`, `bookTicker`, `trade`):
- diffs chain with `U`/`u`/`pu` as on Binance futures (ids jump between messages);
- the first few diffs arrive before the REST snapshot and are older than it (must be dropped);
  the snapshot holds the book after the last of those, and its `lastUpdateId` falls inside the
  next diff (`U <= L <= u`), so that diff bridges it;
- some `bookTicker`s carry a diff's `u` and the true BBO after that diff; they arrive a little
  before or after the diff. Others carry an id inside a diff's range and are never checked;
- the book is never crossed or locked.
Everything comes from `random.Random(seed)`: the same seed gives the same bytes.
"""

from __future__ import annotations

import bisect
import gzip
import random
from dataclasses import dataclass
from pathlib import Path

from mixmaker._core import SyncRule
from mixmaker.money import format_units
from mixmaker.replay.detect import VenueSpec

PRICE_DECIMALS = 2
SIZE_DECIMALS = 3
SPEC = VenueSpec(SyncRule.BINANCE_FUTURES, PRICE_DECIMALS, SIZE_DECIMALS, "synthetic Binance USD-M futures", "BTCUSDT", "built in")

START_MID = 6_000_000  # 60000.00
START_DEPTH = 200      # levels per side in the first book
MIN_DEPTH = 20         # never thin a side below this
MAX_DEPTH = 400        # levels beyond this far from the touch get deleted
BUFFERED_AFTER = 3     # diffs that arrive between the stale ones and the snapshot


@dataclass(frozen=True)
class SyntheticFeed:
    seed: int
    messages: tuple[bytes, ...]
    stale_diffs: int        # diffs before the snapshot with u < L: dropped, not flagged
    applied_diffs: int      # every other diff
    checked_tickers: int    # tickers whose u equals a diff applied live
    final_bids: dict[int, int]  # the true final book, scaled ints
    final_asks: dict[int, int]
    spec: VenueSpec = SPEC

    def lines(self, start_ns: int = 1_723_161_255_000_000_000) -> list[bytes]:
        """`<local_ts_ns> <json>` lines, the recording format."""
        return [b"%d %s" % (start_ns + i * 1_000_000, m) for i, m in enumerate(self.messages)]

    def write_gzip(self, path: str | Path) -> Path:
        p = Path(path)
        with gzip.open(p, "wb") as f:
            f.write(b"\n".join(self.lines()) + b"\n")
        return p


def synthetic_feed(seed: int = 7, diffs: int = 3000, stale: int = 4) -> SyntheticFeed:
    return _Builder(random.Random(seed), seed).build(diffs, stale)


@dataclass
class _Diff:
    U: int
    u: int
    pu: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    bbo: tuple[int, int, int, int]  # after this diff


class _Side:
    """Sorted prices + sizes: the best level is cheap to find."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.prices: list[int] = []  # ascending
        self.sizes: dict[int, int] = {}

    def best(self) -> int:
        return self.prices[-1] if self.is_bid else self.prices[0]

    def set(self, price: int, size: int) -> None:
        if size == 0:
            del self.sizes[price]
            self.prices.pop(bisect.bisect_left(self.prices, price))
        else:
            if price not in self.sizes:
                bisect.insort(self.prices, price)
            self.sizes[price] = size

    def worst(self) -> int:
        return self.prices[0] if self.is_bid else self.prices[-1]


class _Builder:
    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self.bids = _Side(True)
        self.asks = _Side(False)
        for i in range(1, START_DEPTH + 1):
            self.bids.set(START_MID - i, rng.randint(1, 3000))
            self.asks.set(START_MID + i, rng.randint(1, 3000))
        self.uid = 5_000_000_000_000
        self.ms = 1_723_161_256_000

    def build(self, n_diffs: int, n_stale: int) -> SyntheticFeed:
        rng = self.rng
        if n_diffs < n_stale + BUFFERED_AFTER + 2:
            raise ValueError(f"need at least {n_stale + BUFFERED_AFTER + 2} diffs")
        diffs: list[_Diff] = []
        snapshot = b""
        for i in range(n_diffs):
            if i == n_stale:
                # The REST snapshot is the book before diff i; L lies inside diff i's range.
                bids = [(p, self.bids.sizes[p]) for p in reversed(self.bids.prices)]
                asks = [(p, self.asks.sizes[p]) for p in self.asks.prices]
                U = self.uid + 1
                span = rng.randint(0, 40)
                diffs.append(self._diff(U, U + span))
                snapshot = _snapshot(rng.randint(U, U + span), bids, asks, self.ms)
            else:
                U = self.uid + rng.randint(1, 30)
                diffs.append(self._diff(U, U + rng.randint(0, 40)))

        # Arrival order: each message gets a position key; diffs sit at their index.
        first_live = n_stale + BUFFERED_AFTER
        keyed: list[tuple[float, int, bytes]] = []
        checked = 0
        for i, d in enumerate(diffs):
            ms = self.ms + i * 10
            keyed.append((i, len(keyed), _diff_json(d, ms)))
            if i >= first_live and rng.random() < 0.3:
                # Checked: may land up to ~1.5 diffs early or late.
                keyed.append((i + rng.uniform(-1.5, 1.5), len(keyed), _ticker_json(d.u, d.bbo, ms)))
                checked += 1
            if d.u > d.U and rng.random() < 0.5:
                # An id inside the diff's range matches no diff's u: never checked.
                keyed.append((i + rng.uniform(-0.5, 0.5), len(keyed), _ticker_json(rng.randint(d.U, d.u - 1), d.bbo, ms)))
            if rng.random() < 0.3:
                keyed.append((i + rng.uniform(0.0, 1.0), len(keyed), _trade_json(d.bbo, rng, ms)))
        keyed.append((first_live - 0.5, len(keyed), snapshot))
        keyed.sort()
        return SyntheticFeed(
            seed=self.seed,
            messages=tuple(m for _, _, m in keyed),
            stale_diffs=n_stale,
            applied_diffs=n_diffs - n_stale,
            checked_tickers=checked,
            final_bids=dict(self.bids.sizes),
            final_asks=dict(self.asks.sizes),
        )

    def _diff(self, U: int, u: int) -> _Diff:
        """Random level changes near the touch; each step keeps bid < ask, so the result does."""
        rng = self.rng
        changes: dict[bool, dict[int, int]] = {True: {}, False: {}}
        for _ in range(rng.randint(1, 12)):
            is_bid = rng.random() < 0.5
            side, other = (self.bids, self.asks) if is_bid else (self.asks, self.bids)
            if is_bid:
                price = min(side.best() + rng.randint(-40, 2), other.best() - 1)
            else:
                price = max(side.best() + rng.randint(-2, 40), other.best() + 1)
            if price in changes[is_bid] or price <= 0:
                continue
            if price in side.sizes and len(side.prices) > MIN_DEPTH and rng.random() < 0.45:
                size = 0
            else:
                size = rng.randint(1, 5000)
            side.set(price, size)
            changes[is_bid][price] = size
        for side in (self.bids, self.asks):
            while len(side.prices) > MAX_DEPTH:
                price = side.worst()
                side.set(price, 0)
                changes[side.is_bid][price] = 0
        d = _Diff(
            U, u, self.uid,
            sorted(changes[True].items()), sorted(changes[False].items()),
            (self.bids.best(), self.bids.sizes[self.bids.best()], self.asks.best(), self.asks.sizes[self.asks.best()]),
        )
        self.uid = u
        return d


def _px(p: int) -> str:
    return format_units(p, PRICE_DECIMALS)


def _qty(q: int) -> str:
    return format_units(q, SIZE_DECIMALS)


def _levels(levels: list[tuple[int, int]]) -> str:
    return ",".join(f'["{_px(p)}","{_qty(q)}"]' for p, q in levels)


def _diff_json(d: _Diff, ms: int) -> bytes:
    return (
        '{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate",'
        f'"E":{ms + 1},"T":{ms},"s":"BTCUSDT","U":{d.U},"u":{d.u},"pu":{d.pu},'
        f'"b":[{_levels(d.bids)}],"a":[{_levels(d.asks)}]}}}}'
    ).encode()


def _snapshot(last_update_id: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]], ms: int) -> bytes:
    return (
        f'{{"lastUpdateId":{last_update_id},"E":{ms},"T":{ms},'
        f'"bids":[{_levels(bids)}],"asks":[{_levels(asks)}]}}'
    ).encode()


def _ticker_json(u: int, bbo: tuple[int, int, int, int], ms: int) -> bytes:
    bp, bq, ap, aq = bbo
    return (
        '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker",'
        f'"u":{u},"s":"BTCUSDT","b":"{_px(bp)}","B":"{_qty(bq)}","a":"{_px(ap)}","A":"{_qty(aq)}",'
        f'"T":{ms},"E":{ms + 1}}}}}'
    ).encode()


def _trade_json(bbo: tuple[int, int, int, int], rng: random.Random, ms: int) -> bytes:
    buyer_maker = rng.random() < 0.5
    price = bbo[0] if buyer_maker else bbo[2]
    return (
        '{"stream":"btcusdt@trade","data":{"e":"trade",'
        f'"E":{ms + 1},"T":{ms},"s":"BTCUSDT","t":{rng.randint(1, 10**9)},'
        f'"p":"{_px(price)}","q":"{_qty(rng.randint(1, 500))}","X":"MARKET","m":{"true" if buyer_maker else "false"}}}}}'
    ).encode()
