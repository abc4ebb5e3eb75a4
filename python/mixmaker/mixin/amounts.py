"""Mixin amounts: integers of 1e-8 (the kernel's precision), as `mixmaker.money` at 8 decimals."""

from __future__ import annotations

from decimal import Decimal

from mixmaker import money
from mixmaker.money import MIXIN_DECIMALS, AmountError

PRECISION = MIXIN_DECIMALS

__all__ = ["PRECISION", "AmountError", "format_units", "from_units", "to_units"]


def to_units(amount: Decimal | str | int) -> int:
    """Decimal, decimal string or int -> integer units. Floats and more than 8 decimals are refused."""
    return money.to_units(amount, MIXIN_DECIMALS)


def from_units(units: int) -> Decimal:
    """The exact Decimal, with its 8 places (`from_units(150_000_000) == Decimal("1.50000000")`)."""
    return money.to_decimal(units, MIXIN_DECIMALS)


def format_units(units: int) -> str:
    """The API's string form: no exponent, trailing zeros dropped (e.g. '1', '0.0001', '-2.5')."""
    return money.format_units(units, MIXIN_DECIMALS, trim=True)
