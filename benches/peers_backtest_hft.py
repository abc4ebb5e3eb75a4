"""hftbacktest 2.4.4 as a backtest peer: the recording converted with its own converter (not
timed), and the same maker as mixmaker's benches/maker_20hz.toml written as a numba strategy.

The maker, side by side with mixmaker's PMM settings:
- every 50 ms (`elapse(50 ms)`; mixmaker: `tick_seconds = 0.05`), from the mid of the best bid and ask;
- one buy at floor(mid x (1 - 0.005 %)) and one sell at floor(mid x (1 + 0.005 %)) on the 0.1 tick
  (`bid_spread = ask_spread = 0.005`, Hummingbot floors both sides);
- 0.01 BTC each (`order_amount = 0.01`), post-only (GTX; mixmaker's venue rejects an order that
  would take when sent and expires one that would take when it arrives);
- a resting order at the wanted price is kept (`order_refresh_tolerance_pct = 0`), any other is
  cancelled and the wanted one submitted at once (`should_wait_order_cancel_confirmation = false`),
  at most one working order per side besides those being cancelled;
- 25 ms latency each way (`latency_ms = 25`: mixmaker's venue acts on a request 25 ms after it is
  sent), risk-averse queue (`queue_model = "risk_averse"`), 0.02 % maker fee, partial fills.
Counted: orders submitted, cancels sent, and fills (the exchange's trade count).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hftbacktest import GTX, LIMIT, BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.data.utils import binancefutures

STEP_NS = 50_000_000
LATENCY_NS = 25_000_000
SPREAD = 0.00005  # 0.005 %
QTY = 0.01
TICK = 0.1
LOT = 0.001


def convert(path: str) -> np.ndarray:
    return binancefutures.convert(path, combined_stream=True)


def backtest(data: np.ndarray):
    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_latency(LATENCY_NS, LATENCY_NS)
        .risk_adverse_queue_model()
        .partial_fill_exchange()
        .trading_value_fee_model(0.0002, 0.0005)
        .tick_size(TICK)
        .lot_size(LOT)
        .last_trades_capacity(0)
    )
    return HashMapMarketDepthBacktest([asset])


@njit
def run_maker(hbt, step_ns, spread, qty):
    """Returns (decisions, orders submitted, cancels sent, fills)."""
    decisions = submitted = cancels = 0
    next_id = 1
    while hbt.elapse(step_ns) == 0:
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        bid_t, ask_t = depth.best_bid_tick, depth.best_ask_tick
        decisions += 1
        if bid_t <= 0 or ask_t <= 0 or ask_t <= bid_t or ask_t > 10_000_000_000:
            continue
        mid2 = bid_t + ask_t  # the mid in half ticks
        want_bid = int(np.floor(mid2 * (1.0 - spread) / 2.0))
        want_ask = int(np.floor(mid2 * (1.0 + spread) / 2.0))
        have_bid = have_ask = False
        orders = hbt.orders(0)
        values = orders.values()
        while values.has_next():
            o = values.get()
            if not o.cancellable:
                continue
            if o.side == 1:
                if o.price_tick == want_bid and not have_bid:
                    have_bid = True
                    continue
            elif o.price_tick == want_ask and not have_ask:
                have_ask = True
                continue
            hbt.cancel(0, o.order_id, False)
            cancels += 1
        if not have_bid and want_bid < ask_t:
            hbt.submit_buy_order(0, next_id, want_bid * depth.tick_size, qty, GTX, LIMIT, False)
            next_id += 1
            submitted += 1
        if not have_ask and want_ask > bid_t:
            hbt.submit_sell_order(0, next_id, want_ask * depth.tick_size, qty, GTX, LIMIT, False)
            next_id += 1
            submitted += 1
    fills = hbt.state_values(0).num_trades
    return decisions, submitted, cancels, fills


@njit
def run_bare(hbt, step_ns):
    """The same clock with no strategy: the replay's own cost."""
    n = 0
    while hbt.elapse(step_ns) == 0:
        n += 1
    return n
