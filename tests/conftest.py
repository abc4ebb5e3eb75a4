"""Shared fixtures: where the recorded feeds live, and a plain-Python reference book.

The reference is deliberately simple and independent of the Rust core: dicts of scaled-int
price -> size, exchange strings scaled with string operations, and the venue sync rules from
`../shared/data/market/README.md` written out longhand. It asserts the recordings' own update-id
chains while it builds, so a broken fixture file fails loudly here, not in a confusing test.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

try:  # orjson is a test dependency; json keeps the reference usable without it
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover
    json_loads = json.loads

REPO = Path(__file__).resolve().parents[1]

RECORDINGS = {
    "usdm": "binance_usdm_btcusdt_20240808_hftbacktest.gz",
    "coinm": "binance_coinm_btcusd_perp_20240808_hftbacktest.gz",
    "spot": "binance_spot_btcusdt_20240808_hftbacktest.gz",
    "bybit": "bybit_linear_xrpusdt_ob500_20241201_nautilus.data.zip",
}


@pytest.fixture(scope="session", autouse=True)
def _tape_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Backtest tapes are cached in a session folder, not in the user's ~/.cache."""
    if "MIXMAKER_CACHE" not in os.environ:
        os.environ["MIXMAKER_CACHE"] = str(tmp_path_factory.mktemp("tapes"))


def data_dir() -> Path:
    """`$MIXMAKER_DATA`, else `../shared/data/market/` next to the repository."""
    env = os.environ.get("MIXMAKER_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "market"


def recording_path(key: str) -> Path:
    """Path of a recording, or skip the test with the reason."""
    path = data_dir() / RECORDINGS[key]
    if not path.is_file():
        pytest.skip(f"recording {RECORDINGS[key]} not found in {data_dir()} (set MIXMAKER_DATA)")
    return path


# --- reference book ------------------------------------------------------------------------

Level = tuple[int, int]


def scaled(text: str, decimals: int) -> int:
    """Exact exchange decimal string -> scaled int; digits past the scale must be zeros."""
    whole, _, frac = text.partition(".")
    if len(frac) > decimals:
        assert frac[decimals:].strip("0") == "", f"{text} has more than {decimals} decimals"
        frac = frac[:decimals]
    return int(whole + frac.ljust(decimals, "0"))


def unscaled(value: int, decimals: int) -> str:
    return format(Decimal(value).scaleb(-decimals), "f")


class RefBook:
    def __init__(self, bids: Iterable[Level] = (), asks: Iterable[Level] = ()) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.apply(bids, asks)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if s:
                    side[p] = s
                else:
                    side.pop(p, None)

    def copy(self) -> RefBook:
        c = RefBook()
        c.bids, c.asks = dict(self.bids), dict(self.asks)
        return c

    def bids_desc(self) -> list[Level]:
        return sorted(self.bids.items(), reverse=True)

    def asks_asc(self) -> list[Level]:
        return sorted(self.asks.items())


# --- a feed parsed by the reference --------------------------------------------------------


@dataclass
class RefDiff:
    pos: int  # index of the message in ParsedFeed.messages
    U: int
    u: int
    pu: int | None
    bids: list[Level]
    asks: list[Level]


@dataclass(eq=False)  # identity hash: feeds are cache keys
class ParsedFeed:
    name: str
    rule: str
    price_decimals: int
    size_decimals: int
    messages: list[bytes]
    snapshot_pos: int
    snapshot_id: int
    snapshot: RefBook
    stale: list[RefDiff]    # diffs the rules drop before the sync point
    applied: list[RefDiff]  # every diff from the bridging one on, chain-checked
    symbol: str = ""

    def book_after(self, k: int) -> RefBook:
        """The true book after `applied[k]` (k = -1: the snapshot). Shared: do not mutate."""
        return _book_after(self, k)

    def snapshot_message(self, last_update_id: int, book: RefBook) -> bytes:
        """A fresh snapshot in this venue's format (REST for Binance, a WS message for Bybit)."""
        pd, sd = self.price_decimals, self.size_decimals
        bids = [[unscaled(p, pd), unscaled(s, sd)] for p, s in book.bids_desc()]
        asks = [[unscaled(p, pd), unscaled(s, sd)] for p, s in book.asks_asc()]
        if self.rule == "bybit":
            msg: dict[str, Any] = {
                "topic": f"orderbook.500.{self.symbol}", "type": "snapshot", "ts": 1,
                "data": {"s": self.symbol, "b": bids, "a": asks, "u": last_update_id, "seq": 1}, "cts": 1,
            }
        else:
            msg = {"lastUpdateId": last_update_id, "E": 1, "T": 1, "bids": bids, "asks": asks}
        return json.dumps(msg, separators=(",", ":")).encode()


# Feeds are session fixtures, so caching by feed identity is safe.
@lru_cache(maxsize=32)
def _book_after(feed: ParsedFeed, k: int) -> RefBook:
    book = feed.snapshot.copy()
    for d in feed.applied[: k + 1]:
        book.apply(d.bids, d.asks)
    return book


def parse_feed(name: str, rule: str, pd: int, sd: int, messages: list[bytes]) -> ParsedFeed:
    """Split a stream into snapshot and diffs and apply the venue rule to find the sync point."""
    diffs: list[RefDiff] = []
    snap: tuple[int, int, RefBook] | None = None
    symbol = ""

    def levels(raw: list[list[str]]) -> list[Level]:
        return [(scaled(p, pd), scaled(s, sd)) for p, s in raw]

    for pos, raw in enumerate(messages):
        head = raw[:160]
        if rule == "bybit":
            m = json_loads(raw)
            data = m["data"]
            if m["type"] == "snapshot" and snap is None:
                snap, symbol = (pos, data["u"], RefBook(levels(data["b"]), levels(data["a"]))), data["s"]
            elif m["type"] == "delta":
                diffs.append(RefDiff(pos, data["u"], data["u"], None, levels(data["b"]), levels(data["a"])))
        elif b'"lastUpdateId"' in head:
            m = json_loads(raw)
            assert snap is None, "one REST snapshot per feed"
            snap = (pos, m["lastUpdateId"], RefBook(levels(m["bids"]), levels(m["asks"])))
        elif b'"depthUpdate"' in head:
            m = json_loads(raw)
            d = m.get("data", m)
            symbol = d["s"]
            diffs.append(RefDiff(pos, d["U"], d["u"], d.get("pu"), levels(d["b"]), levels(d["a"])))
    assert snap is not None, f"{name}: no snapshot"
    snapshot_pos, L, book = snap

    stale, applied = [], []
    for d in diffs:
        if applied:
            prev = applied[-1].u
            ok = {"binance_futures": d.pu == prev, "binance_spot": d.U == prev + 1, "bybit": d.u == prev + 1}[rule]
            assert ok, f"{name}: chain breaks at diff U={d.U} u={d.u} after u={prev}"
            applied.append(d)
        elif rule == "binance_futures" and d.u < L or rule != "binance_futures" and d.u <= L:
            stale.append(d)
        else:
            bridge = d.U <= L <= d.u if rule == "binance_futures" else d.U <= L + 1 <= d.u
            assert bridge, f"{name}: first diff after the snapshot does not bridge L={L}"
            applied.append(d)
    return ParsedFeed(name, rule, pd, sd, messages, snapshot_pos, L, book, stale, applied, symbol)


# --- fixtures ------------------------------------------------------------------------------

VENUES = {  # key -> (rule, price decimals, size decimals)
    "usdm": ("binance_futures", 2, 3),
    "coinm": ("binance_futures", 1, 0),
    "spot": ("binance_spot", 2, 8),
    "bybit": ("bybit", 4, 0),
}


def _parsed_recording(key: str) -> ParsedFeed:
    from mixmaker.replay import open_recording

    rule, pd, sd = VENUES[key]
    return parse_feed(key, rule, pd, sd, list(open_recording(recording_path(key)).messages()))


@pytest.fixture(scope="session")
def usdm_feed() -> ParsedFeed:
    return _parsed_recording("usdm")


@pytest.fixture(scope="session")
def coinm_feed() -> ParsedFeed:
    return _parsed_recording("coinm")


@pytest.fixture(scope="session")
def spot_feed() -> ParsedFeed:
    return _parsed_recording("spot")


@pytest.fixture(scope="session")
def bybit_feed() -> ParsedFeed:
    return _parsed_recording("bybit")


@pytest.fixture(scope="session")
def synthetic():
    from mixmaker.replay import synthetic_feed

    return synthetic_feed()


@pytest.fixture(scope="session")
def synthetic_parsed(synthetic) -> ParsedFeed:
    s = synthetic.spec
    return parse_feed("synthetic", s.rule.value, s.price_decimals, s.size_decimals, list(synthetic.messages))


@pytest.fixture
def feed_by_name(request: pytest.FixtureRequest) -> Callable[[str], ParsedFeed]:
    """`feed_by_name("usdm")`: a parsed feed by short name (skips when the file is absent)."""
    names = {"synthetic": "synthetic_parsed", "usdm": "usdm_feed", "coinm": "coinm_feed", "spot": "spot_feed", "bybit": "bybit_feed"}
    return lambda name: request.getfixturevalue(names[name])


# --- assertions shared by the sync tests -----------------------------------------------------


def assert_book_equals(book: Any, ref: RefBook) -> None:
    """Level by level, both sides, nothing extra."""
    assert (book.bid_levels, book.ask_levels) == (len(ref.bids), len(ref.asks))
    assert [tuple(x) for x in book.bids_raw(len(ref.bids) + 1)] == ref.bids_desc()
    assert [tuple(x) for x in book.asks_raw(len(ref.asks) + 1)] == ref.asks_asc()


def assert_not_readable(book: Any) -> None:
    """A book that is not synced shows nothing, never stale data."""
    assert book.best_bid() is None and book.best_ask() is None
    assert book.best_bid_raw() is None and book.best_ask_raw() is None
    assert list(book.bids_raw(10)) == [] and list(book.asks_raw(10)) == []
    assert book.mid() is None
