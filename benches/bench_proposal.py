"""Proposal cost per tick on real books under pytest-benchmark: the Cython kernel against the same
proposal computed in Python with Decimal, the way Hummingbot computes it (tests/pmm_decimal.py),
on the same inputs; and the whole controller `decide()` with either. Both must produce the same
proposals: a benchmark of a wrong answer fails.

    pytest benches/bench_proposal.py --benchmark-only          # needs the USD-M recording

The workload: 5 levels per side, inventory skew, order optimization with depth and own volume,
budget, and the refresh-tolerance check against the previous tick's proposal. The books are the
USD-M recording's, sampled every EVERY diffs once synced ($MIXMAKER_DATA, else
../shared/data/market next to the repository). A round runs every sampled tick in order;
`extra_info["us_per_tick"]` is the round's mean over the ticks. Groups:
- "proposal": `propose()` + tolerance (`all_within_tolerance`) from `OrderBook.top_raw` arrays,
  against the same steps in Decimal over Python rows (Hummingbot's shape);
- "controller decide": `PureMarketMaking.decide()` on a snapshot of each sampled book (reference
  price, bands, cancel rules and the proposal), with either proposal function.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pmm_decimal  # tests/, on the path through benches/conftest.py
import pytest
from conftest import data_dir

from mixmaker.book import BookState, OrderBook
from mixmaker.replay import new_sync, open_recording, route
from mixmaker.strategy import Balances, MarketConfig, MarketSnapshot, PMMConfig, PureMarketMaking
from mixmaker.strategy.kernel import SCALE, all_within_tolerance, propose

EVERY = 10
ROUNDS = 5
FILE = "binance_usdm_btcusdt_20240808_hftbacktest.gz"
MARKET = MarketConfig(symbol="BTCUSDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=3,
                      tick=Decimal("0.10"), lot=Decimal("0.001"))
PMM = PMMConfig(bid_spread=Decimal("0.02"), ask_spread=Decimal("0.02"), order_amount=Decimal("0.01"),
                order_levels=5, order_level_spread=Decimal("0.01"), order_level_amount=Decimal("0.005"),
                inventory_skew_enabled=True, order_optimization_enabled=True,
                bid_order_optimization_depth=Decimal("0.5"), ask_order_optimization_depth=Decimal("0.5"),
                order_refresh_tolerance_pct=Decimal("0.01"), fee_pct=Decimal("0.02"))
BASE, QUOTE = 600, 30_000 * 10**5  # 0.6 BTC, 30,000 USDT
BAL = Balances(BASE, QUOTE, BASE, QUOTE)
TOL = 10_000  # 0.01 % of SCALE, as order_refresh_tolerance_pct above


# The controller reads the top of the book only; the snapshots copy this many levels a side.
COPIED_LEVELS = 200

States = list[tuple[Any, int]]


def _copy(book: OrderBook) -> OrderBook:
    c = OrderBook(book.price_decimals, book.size_decimals)
    for is_bid, levels in ((True, book.bids_raw(COPIED_LEVELS)), (False, book.asks_raw(COPIED_LEVELS))):
        for price, size in levels:
            c.update_raw(is_bid, price, size)
    return c


@pytest.fixture(scope="module")
def sampled() -> tuple[States, list[MarketSnapshot]]:
    """(top_raw arrays, mid x 2) of the recorded book every EVERY diffs, and a snapshot of each
    (a copy of the book's top: the live one moves on)."""
    path = data_dir() / FILE
    if not path.is_file():
        pytest.skip(f"{FILE} not found (set MIXMAKER_DATA)")
    rec = open_recording(path)
    sync = new_sync(rec.detect_venue())
    rules = MARKET.rules()
    live, copied = PureMarketMaking(PMM, rules), PureMarketMaking(PMM, rules)
    states: States = []
    snaps: list[MarketSnapshot] = []
    applied = 0
    for raw in rec.messages():
        before = sync.last_update_id
        route(sync, raw)
        if sync.state != BookState.SYNCED or sync.last_update_id == before:
            continue
        applied += 1
        if applied % EVERY:
            continue
        book = sync.book
        bid, ask = book.best_bid_raw(), book.best_ask_raw()
        states.append((book.top_raw(PMM.optimization_book_levels), bid[0] + ask[0]))
        snap = MarketSnapshot(applied * 10**9, rules, _copy(book), BAL)
        # The copy decides as the live book does.
        assert live.decide(MarketSnapshot(snap.now_ns, rules, book, BAL)).proposal == copied.decide(snap).proposal
        snaps.append(snap)
    return states, snaps


def run_kernel(params: Any, states: States) -> list[Any]:
    prev_b: list[int] = []
    prev_s: list[int] = []
    out = []
    for (bp, bs, ap, as_), mid2 in states:
        r = propose(params, mid2, mid2, 2, bp, bs, ap, as_, skew_base=BASE, skew_quote=QUOTE,
                    budget_base=BASE, budget_quote=QUOTE, own_buy=10, own_sell=10)
        keep = all_within_tolerance(prev_b, r.buy_prices, TOL) and all_within_tolerance(prev_s, r.sell_prices, TOL)
        prev_b, prev_s = r.buy_prices, r.sell_prices
        out.append((r.buy_prices, r.buy_sizes, r.sell_prices, r.sell_sizes, keep))
    return out


def run_decimal(params: Any, states: States) -> list[Any]:
    tol = Decimal(TOL) / SCALE
    prev_b: list[Decimal] = []
    prev_s: list[Decimal] = []
    out = []
    for (bp, bs, ap, as_), mid2 in states:
        r = pmm_decimal.propose(params, mid2, mid2, 2, bp, bs, ap, as_, skew_base=BASE, skew_quote=QUOTE,
                                budget_base=BASE, budget_quote=QUOTE, own_buy=10, own_sell=10)
        buys = [Decimal(p) / 100 for p in r.buy_prices]
        sells = [Decimal(p) / 100 for p in r.sell_prices]
        keep = pmm_decimal.within_tolerance(prev_b, buys, tol) and pmm_decimal.within_tolerance(prev_s, sells, tol)
        prev_b, prev_s = buys, sells
        out.append((r.buy_prices, r.buy_sizes, r.sell_prices, r.sell_sizes, keep))
    return out



@pytest.fixture(scope="module")
def reference(sampled: tuple[States, list[MarketSnapshot]]) -> list[Any]:
    """The Decimal proposals: what the kernel must give, tick for tick."""
    states, _ = sampled
    params = PMM.params(MARKET.rules())
    kernel, decimal = run_kernel(params, states), run_decimal(params, states)
    same = sum(a == b for a, b in zip(kernel, decimal, strict=True))
    assert same == len(states), f"the kernel and Decimal disagree on {len(states) - same} of {len(states)} ticks"
    return decimal


@pytest.mark.benchmark(group="proposal: every sampled tick, per round")
@pytest.mark.parametrize("path", ["kernel", "decimal"])
def test_proposal(benchmark: Any, path: str, sampled: tuple[States, list[MarketSnapshot]], reference: list[Any]) -> None:
    states, _ = sampled
    run = run_kernel if path == "kernel" else run_decimal
    params = PMM.params(MARKET.rules())
    out = benchmark.pedantic(run, args=(params, states), rounds=ROUNDS, iterations=1)
    assert out == reference
    benchmark.extra_info.update(ticks=len(states), us_per_tick=benchmark.stats.stats.mean * 1e6 / len(states))


@pytest.mark.benchmark(group="controller decide: every sampled tick, per round")
@pytest.mark.parametrize("path", ["kernel", "decimal"])
def test_decide(benchmark: Any, path: str, sampled: tuple[States, list[MarketSnapshot]]) -> None:
    _, snaps = sampled
    rules = MARKET.rules()
    fn = {} if path == "kernel" else {"proposal_fn": pmm_decimal.propose}

    def setup() -> tuple[tuple[PureMarketMaking], dict[str, Any]]:
        return (PureMarketMaking(PMM, rules, **fn),), {}

    def decide_all(ctl: PureMarketMaking) -> list[Any]:
        return [ctl.decide(s).proposal for s in snaps]

    proposals = benchmark.pedantic(decide_all, setup=setup, rounds=ROUNDS, iterations=1)
    assert proposals == decide_all(PureMarketMaking(PMM, rules))  # either way, the kernel's decisions
    benchmark.extra_info.update(ticks=len(snaps), us_per_tick=benchmark.stats.stats.mean * 1e6 / len(snaps))
