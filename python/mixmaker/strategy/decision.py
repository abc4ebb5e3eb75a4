"""What a controller hands an executor: target quotes and the cancels it requires."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from mixmaker._core import Side


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
        # tuple.__new__ is what Quote() calls, without the Python-level __new__ in between
        return cls(
            tuple([_new(Quote, (_BUY, i, buy_prices[i], buy_sizes[i])) for i in range(len(buy_prices))]),
            tuple([_new(Quote, (_SELL, i, sell_prices[i], sell_sizes[i])) for i in range(len(sell_prices))]),
        )

    def side(self, side: Side) -> tuple[Quote, ...]:
        return self.buys if side is _BUY else self.sells

    def __len__(self) -> int:
        return len(self.buys) + len(self.sells)


_new = tuple.__new__
_BUY, _SELL = Side.BUY, Side.SELL  # the variants are singletons: `is` compares them
_NO_HOLD: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, init=False)
class Decision:
    """One tick's decision.

    - `proposal`: the quotes wanted now; None while nothing new may be proposed.
    - `cancel`: (client id, reason) the controller wants gone whatever the proposal says.
    - `refresh`: the executor may replace live quotes that are out of `tolerance` of the
      proposal (a fraction of `mixmaker._proposal.SCALE`; negative = always replace).
    - `create`: the executor may place the proposal's missing quotes.
    - `hold`: orders the executor must leave alone (hanging orders).
    - `renew`: hanging orders to place again, as they were, after their cancel was confirmed.
    - `reason`: why the controller is not quoting, when it is not: a `Reason` (an `IdleKind`
      and a detail) that reads "<category>: <detail>" (e.g. "book DESYNCED: pu 7 != previous
      u 5", "filled_order_delay: ...").
    """

    proposal: Proposal | None
    cancel: tuple[tuple[str, str], ...]
    refresh: bool
    create: bool
    tolerance: int
    hold: frozenset[str]
    reason: str | None
    renew: tuple[Quote, ...]

    # Built every tick: the slots are set directly (the frozen dataclass __init__ goes through
    # object.__setattr__ once per field); the object is as immutable as before.
    def __init__(self, proposal: Proposal | None = None, cancel: tuple[tuple[str, str], ...] = (),
                 refresh: bool = False, create: bool = False, tolerance: int = 0,
                 hold: frozenset[str] = _NO_HOLD, reason: str | None = None, renew: tuple[Quote, ...] = ()) -> None:
        _set_proposal(self, proposal)
        _set_cancel(self, cancel)
        _set_refresh(self, refresh)
        _set_create(self, create)
        _set_tolerance(self, tolerance)
        _set_hold(self, hold)
        _set_reason(self, reason)
        _set_renew(self, renew)

    @classmethod
    def idle(cls, reason: str, cancel: tuple[tuple[str, str], ...] = ()) -> Decision:
        return cls(reason=reason, cancel=cancel)


(_set_proposal, _set_cancel, _set_refresh, _set_create, _set_tolerance, _set_hold, _set_reason, _set_renew) = (
    getattr(Decision, name).__set__
    for name in ("proposal", "cancel", "refresh", "create", "tolerance", "hold", "reason", "renew"))
