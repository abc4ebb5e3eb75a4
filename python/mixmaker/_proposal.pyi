"""Type stubs for the Cython proposal kernel (`mixmaker._proposal`). Controllers use it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mixmaker._core import MixmakerError

SCALE: int  # rates are integer fractions of SCALE (1e-8)
MAX_LEVELS_PER_SIDE: int

Int64s = npt.NDArray[np.int64]

class ProposalInputError(MixmakerError, ValueError): ...

class ProposalParams:
    tick: int
    lot: int
    min_size: int
    bid_spread: int
    ask_spread: int
    level_spread: int
    order_amount: int
    level_amount: int
    levels: int
    skew_enabled: bool
    target_base: int
    range_multiplier: int
    optimize: bool
    bid_depth: int
    ask_depth: int
    add_costs: bool
    fee: int
    take_if_crossed: bool
    def __init__(self, *, tick: int, lot: int, bid_spread: int, ask_spread: int, order_amount: int,
                 levels: int = 1, level_spread: int = 0, level_amount: int = 0, min_size: int = 0,
                 skew_enabled: bool = False, target_base: int = ..., range_multiplier: int = ...,
                 optimize: bool = False, bid_depth: int = 0, ask_depth: int = 0, add_costs: bool = False,
                 fee: int = 0, take_if_crossed: bool = False) -> None: ...
    def total_order_size(self) -> int: ...

class RawProposal:
    buy_prices: list[int]
    buy_sizes: list[int]
    sell_prices: list[int]
    sell_sizes: list[int]
    def __init__(self, buy_prices: list[int], buy_sizes: list[int], sell_prices: list[int], sell_sizes: list[int]) -> None: ...

def inventory_skew(base: int, quote: int, price_num: int, price_den: int, target_base: int,
                   range_base: int) -> tuple[int, int, int]: ...
def propose(p: ProposalParams, ref_buy_num: int, ref_sell_num: int, ref_den: int,
            bid_px: Int64s, bid_sz: Int64s, ask_px: Int64s, ask_sz: Int64s,
            skew_base: int = 0, skew_quote: int = 0, budget_base: int = 0, budget_quote: int = 0,
            own_buy: int = 0, own_sell: int = 0, allow_buys: bool = True, allow_sells: bool = True,
            drop_buys: int = 0, drop_sells: int = 0) -> RawProposal: ...
def finish(p: ProposalParams, buy_prices: list[int], buy_sizes: list[int], sell_prices: list[int],
           sell_sizes: list[int], bid_px: Int64s, ask_px: Int64s, budget_base: int = 0,
           budget_quote: int = 0) -> RawProposal: ...
def within_tolerance(current: int, proposed: int, tolerance: int) -> bool: ...
def all_within_tolerance(current: list[int], proposed: list[int], tolerance: int) -> bool: ...
