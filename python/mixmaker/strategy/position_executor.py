"""The position executor (triple barrier, reference A7.4): open a position with a limit order,
then close it on the first barrier hit (stop loss, trailing stop, take profit, time limit).

Prices and sizes are exact integers; PnL percentages are exact `Fraction`s of the entry. The
venue interface has limit orders only, so "market" closes are marketable limits: the best
opposite price moved `close_slippage` through the book and floored to the tick. Differences
from Hummingbot: take profit closes with that marketable order when the barrier is crossed
(no resting take-profit limit order); activation bounds are not modelled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from mixmaker._core import OrderState, OrderView
from mixmaker.money import rescale_ratio
from mixmaker.orders import ClientOrderTracker
from mixmaker.orders.protocol import FEE_DECIMALS, Side
from mixmaker.strategy.errors import ExecutorStateError
from mixmaker.strategy.market import MarketRules, MarketSnapshot
from mixmaker.strategy.runnable import CloseType, RunnableStatus

log = logging.getLogger("mixmaker.strategy.position")
_CLOSED_UNFILLED = (OrderState.CANCELED, OrderState.EXPIRED, OrderState.FAILED)


@dataclass(frozen=True, slots=True)
class TripleBarrier:
    """Fractions of the entry price (Fraction("0.02") = 2 %); None disables a barrier."""

    stop_loss: Fraction | None = None
    take_profit: Fraction | None = None
    time_limit_ns: int | None = None
    trailing_activation: Fraction | None = None  # trailing stop arms at this PnL ...
    trailing_delta: Fraction | None = None  # ... and fires this far below the best PnL since


@dataclass(frozen=True, slots=True)
class PositionConfig:
    symbol: str
    side: Side
    amount: int  # size units
    entry_price: int | None  # None: enter with a marketable order
    barrier: TripleBarrier
    close_slippage: Fraction = Fraction(1, 100)
    max_retries: int = 10


def marketable_price(snap: MarketSnapshot, side: Side, slippage: Fraction) -> int | None:
    """A limit price that takes: the best opposite price moved by `slippage`, on the tick."""
    if snap.book is None:
        return None
    best = snap.book.best_ask_raw() if side == Side.BUY else snap.book.best_bid_raw()
    if best is None:
        return None
    tick = snap.rules.tick
    px = Fraction(best[0]) * (1 + slippage if side == Side.BUY else 1 - slippage)
    return int(px // tick) * tick


def _opposite(side: Side) -> Side:
    return Side.SELL if side == Side.BUY else Side.BUY


class PositionExecutor:
    def __init__(self, cfg: PositionConfig, tracker: ClientOrderTracker, rules: MarketRules) -> None:
        if cfg.amount <= 0 or cfg.amount % rules.lot:
            raise ExecutorStateError(f"amount {cfg.amount} must be a positive multiple of the lot {rules.lot}")
        self.cfg = cfg
        self.side = Side.from_value(cfg.side)  # the enum from here on, whatever the caller gave
        self.tracker = tracker
        self.rules = rules
        self.status = RunnableStatus.NOT_STARTED
        self.close_type: CloseType | None = None
        self.open_id: str | None = None
        self.close_ids: list[str] = []
        self.started_ns: int | None = None
        self.trailing_trigger: Fraction | None = None
        self.retries = 0


    def _view(self, cid: str) -> OrderView:
        """An order this executor placed (the tracker keeps every order it was given)."""
        v = self.tracker.get(cid)
        if v is None:
            raise ExecutorStateError(f"the tracker does not know order {cid}")
        return v

    # ------------------------------------------------------------------ figures
    def _filled(self, cids: list[str]) -> tuple[int, int, Fraction]:
        """(size, price x size, fees in the quote) over the orders' fills, all in value units
        (the fees come as `FeeAmount`s, 1e-12 of the quote: exact, a Fraction if finer)."""
        qty = cost = fee = 0
        for cid in cids:
            v = self._view(cid)
            qty += v.filled
            cost += v.cost
            fee += sum(f for asset, f in v.fees if asset == self.rules.quote)
        return qty, cost, rescale_ratio(fee, FEE_DECIMALS, self.rules.value_decimals)

    @property
    def open_filled(self) -> int:
        return self._filled([self.open_id])[0] if self.open_id else 0

    @property
    def close_filled(self) -> int:
        return self._filled(self.close_ids)[0]

    def net_pnl_pct(self, close_price: int) -> Fraction | None:
        """(trade PnL in quote - fees) / quote spent to open, marking the position at `close_price`."""
        qty, cost, fees = self._filled([self.open_id]) if self.open_id else (0, 0, Fraction(0))
        if qty == 0:
            return None
        sign = 1 if self.side == Side.BUY else -1
        pnl = sign * (close_price * qty - cost) - fees
        return Fraction(pnl, cost)

    def report(self) -> dict[str, Any]:
        oq, oc, of = self._filled([self.open_id]) if self.open_id else (0, 0, Fraction(0))
        cq, cc, cf = self._filled(self.close_ids)
        sign = 1 if self.side == Side.BUY else -1
        return {"status": self.status.name, "close_type": self.close_type.name if self.close_type else None,
                "opened": oq, "closed": cq, "entry_cost": oc, "exit_value": cc, "fees": of + cf,
                "realised_pnl": sign * (cc - Fraction(oc * cq, oq)) - of - cf if oq and cq else None}

    # ------------------------------------------------------------------ lifecycle
    async def tick(self, snap: MarketSnapshot) -> None:
        now = snap.now_ns
        if self.status == RunnableStatus.NOT_STARTED:
            self.status, self.started_ns = RunnableStatus.RUNNING, now
        if self.status == RunnableStatus.RUNNING:
            await self._running(snap)
        elif self.status == RunnableStatus.SHUTTING_DOWN:
            await self._shutting_down(snap)

    async def stop(self, snap: MarketSnapshot, keep_position: bool = False) -> None:
        """Early stop: close what was opened (or hold it with keep_position)."""
        if self.status in (RunnableStatus.NOT_STARTED, RunnableStatus.RUNNING):
            await self._close(snap, CloseType.POSITION_HOLD if keep_position else CloseType.EARLY_STOP)

    async def _running(self, snap: MarketSnapshot) -> None:
        cfg, now = self.cfg, snap.now_ns
        if self.open_id is None:
            price = cfg.entry_price if cfg.entry_price is not None else marketable_price(snap, self.side, cfg.close_slippage)
            if price is None:
                return  # no book: wait
            self.open_id = await self.tracker.create(cfg.symbol, self.side, price, cfg.amount)
            if self._view(self.open_id).state == OrderState.FAILED:
                self.status, self.close_type = RunnableStatus.TERMINATED, CloseType.FAILED
            return
        b = cfg.barrier
        started = now if self.started_ns is None else self.started_ns  # set when it started running
        timed_out = b.time_limit_ns is not None and now >= started + b.time_limit_ns
        if self.open_filled == 0:
            state = self._view(self.open_id).state
            if timed_out or state in _CLOSED_UNFILLED:
                await self._close(snap, CloseType.TIME_LIMIT if timed_out else CloseType.FAILED)
            return
        exit_px = marketable_price(snap, _opposite(self.side), Fraction(0))
        pnl = self.net_pnl_pct(exit_px) if exit_px is not None else None
        if pnl is not None:
            if b.stop_loss is not None and pnl <= -b.stop_loss:
                return await self._close(snap, CloseType.STOP_LOSS)
            if b.trailing_activation is not None and b.trailing_delta is not None:
                if self.trailing_trigger is None and pnl >= b.trailing_activation:
                    self.trailing_trigger = pnl - b.trailing_delta
                elif self.trailing_trigger is not None:
                    if pnl < self.trailing_trigger:
                        return await self._close(snap, CloseType.TRAILING_STOP)
                    self.trailing_trigger = max(self.trailing_trigger, pnl - b.trailing_delta)
            if b.take_profit is not None and pnl >= b.take_profit:
                return await self._close(snap, CloseType.TAKE_PROFIT)
        if timed_out:
            await self._close(snap, CloseType.TIME_LIMIT)

    async def _close(self, snap: MarketSnapshot, why: CloseType) -> None:
        log.info("%s: position closing: %s", self.cfg.symbol, why.name)
        self.close_type = why
        self.status = RunnableStatus.SHUTTING_DOWN
        if self.open_id is not None and self._view(self.open_id).is_live:
            await self.tracker.cancel(self.open_id)
        if why == CloseType.POSITION_HOLD:
            self.status = RunnableStatus.TERMINATED
            return
        await self._shutting_down(snap)

    async def _shutting_down(self, snap: MarketSnapshot) -> None:
        """Until what was closed matches what was opened: (re)place the closing order."""
        if self.open_id is not None and self._view(self.open_id).is_live:
            return  # the open order's cancel is still travelling; it may fill more
        left = self.open_filled - self.close_filled
        if left <= 0:
            self.status = RunnableStatus.TERMINATED
            return
        if any(self._view(c).is_live for c in self.close_ids):
            return
        if self.retries >= self.cfg.max_retries:
            self.status, self.close_type = RunnableStatus.TERMINATED, CloseType.FAILED
            return
        side = _opposite(self.side)
        price = marketable_price(snap, side, self.cfg.close_slippage)
        if price is None:
            return
        self.retries += 1
        self.close_ids.append(await self.tracker.create(self.cfg.symbol, side, price, left))
        if self.close_filled >= self.open_filled:
            self.status = RunnableStatus.TERMINATED
