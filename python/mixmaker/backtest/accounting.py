"""Our fills, counted exactly: position, FIFO realised PnL, fees, and the mark-to-market of the
open position. Values are in the market's value units (price x size scaling). PnL counts our
trades only; the starting inventory's own price move is reported apart (portfolio value)."""

from __future__ import annotations

from collections import deque
from fractions import Fraction

from mixmaker.money import rescale
from mixmaker.orders import FillEvent, Side
from mixmaker.orders.protocol import FEE_DECIMALS


class Accounting:
    def __init__(self, value_decimals: int) -> None:
        self.value_decimals = value_decimals
        rescale(0, FEE_DECIMALS, value_decimals)  # a scale money handles
        self.position = 0  # signed size units bought minus sold
        self.realised = 0
        self.fees = 0
        self.buy_qty = self.sell_qty = 0
        self.buy_value = self.sell_value = 0
        self.fills = 0
        self.maker_fills = 0
        self.filled_orders: set[str] = set()
        self._lots: deque[list[int]] = deque()  # [price, signed qty], oldest first
        self._open_cost = 0  # sum of price x signed qty over open lots

    def on_fill(self, f: FillEvent) -> None:
        self.fills += 1
        self.maker_fills += f.is_maker
        # The simulated venue charges whole value units: the fee (1e-12 of the quote) converts exactly.
        self.fees += rescale(f.fee, FEE_DECIMALS, self.value_decimals)
        self.filled_orders.add(f.client_id)
        q = f.qty if f.side == Side.BUY else -f.qty
        if q > 0:
            self.buy_qty += f.qty
            self.buy_value += f.price * f.qty
        else:
            self.sell_qty += f.qty
            self.sell_value += f.price * f.qty
        self.position += q
        lots = self._lots
        while q and lots and (lots[0][1] > 0) != (q > 0):
            lot = lots[0]
            m = min(abs(q), abs(lot[1]))
            # closing a long: sold at f.price what was bought at lot price; a short: the reverse
            self.realised += (f.price - lot[0]) * m if lot[1] > 0 else (lot[0] - f.price) * m
            step = m if lot[1] > 0 else -m
            lot[1] -= step
            self._open_cost -= lot[0] * step
            q += step
            if lot[1] == 0:
                lots.popleft()
        if q:
            lots.append([f.price, q])
            self._open_cost += f.price * q

    def unrealised(self, mark: Fraction) -> Fraction:
        return self.position * mark - self._open_cost

    def total(self, mark: Fraction) -> Fraction:
        return self.realised + self.unrealised(mark) - self.fees
