"""Choosing which unspent outputs pay for a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterable

from mixmaker.mixin.amounts import format_units
from mixmaker.mixin.errors import LocalPaymentError
from mixmaker.mixin.kernel import SLICE_LIMIT
from mixmaker.mixin.models import Output


class InsufficientOutputsError(LocalPaymentError):
    def __init__(self, asset_id: str, needed: int, available: int, *, capped: bool = False) -> None:
        self.asset_id, self.needed, self.available = asset_id, needed, available
        self.capped = capped  # enough money, in more outputs than one transaction takes
        why = f"the first {SLICE_LIMIT} outputs hold" if capped else "unspent outputs hold"
        super().__init__(f"asset {asset_id}: need {format_units(needed)}, {why} {format_units(available)}")


async def select_outputs(outputs: AsyncIterable[Output], asset_id: str, needed: int) -> tuple[list[Output], int]:
    """Oldest first (ascending sequence) until the sum covers `needed`; returns (inputs, change).
    At most 256 inputs per transaction: past that, merge outputs first."""
    if needed <= 0:
        raise ValueError("a payment needs a positive amount")
    chosen: list[Output] = []
    total = 0
    async for o in outputs:
        if o.state != "unspent" or o.asset_id != asset_id:
            continue
        if len(chosen) == SLICE_LIMIT:
            raise InsufficientOutputsError(asset_id, needed, total, capped=True)
        chosen.append(o)
        total += o.units
        if total >= needed:
            return chosen, total - needed
    raise InsufficientOutputsError(asset_id, needed, total)
