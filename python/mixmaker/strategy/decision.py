"""What a controller hands an executor: target quotes and the cancels it requires."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from mixmaker.strategy.market import Side


class Quote(NamedTuple):  # a tuple: ten of these are built every tick
    side: Side
    level: int  # HANGING_LEVEL for a hanging order being renewed
    price: int
    size: int


HANGING_LEVEL = -1


@dataclass(frozen=True, slots=True)
class Proposal:
    """Target orders, best first on each side."""

    buys: tuple[Quote, ...] = ()
    sells: tuple[Quote, ...] = ()

    @classmethod
    def from_lists(cls, buy_prices: list[int], buy_sizes: list[int], sell_prices: list[int],
                   sell_sizes: list[int]) -> Proposal:
        return cls(
            tuple([Quote("buy", i, p, s) for i, (p, s) in enumerate(zip(buy_prices, buy_sizes))]),
            tuple([Quote("sell", i, p, s) for i, (p, s) in enumerate(zip(sell_prices, sell_sizes))]),
        )

    def side(self, side: Side) -> tuple[Quote, ...]:
        return self.buys if side == "buy" else self.sells

    def __len__(self) -> int:
        return len(self.buys) + len(self.sells)


@dataclass(frozen=True, slots=True)
class Decision:
    """One tick's decision.

    - `proposal`: the quotes wanted now; None while nothing new may be proposed.
    - `cancel`: (client id, reason) the controller wants gone whatever the proposal says.
    - `refresh`: the executor may replace live quotes that are out of `tolerance` of the
      proposal (a fraction of `mixmaker._proposal.SCALE`; negative = always replace).
    - `create`: the executor may place the proposal's missing quotes.
    - `hold`: orders the executor must leave alone (hanging orders).
    - `renew`: hanging orders to place again, as they were, after their cancel was confirmed.
    - `reason`: why the controller is not quoting, when it is not: "<category>: <detail>"
      (e.g. "book DESYNCED: pu 7 != previous u 5", "filled_order_delay: ...").
    """

    proposal: Proposal | None = None
    cancel: tuple[tuple[str, str], ...] = ()
    refresh: bool = False
    create: bool = False
    tolerance: int = 0
    hold: frozenset[str] = field(default_factory=frozenset)
    reason: str | None = None
    renew: tuple[Quote, ...] = ()

    @classmethod
    def idle(cls, reason: str, cancel: tuple[tuple[str, str], ...] = ()) -> Decision:
        return cls(reason=reason, cancel=cancel)
