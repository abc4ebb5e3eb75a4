"""Exact amounts: Mixin's kernel precision is 8 decimals; integers of 1e-8 units inside."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

PRECISION = 8
UNIT = Decimal(1).scaleb(-PRECISION)


class AmountError(ValueError):
    pass


def to_units(amount: Decimal | str | int) -> int:
    """Decimal or decimal string -> integer units. Floats and more than 8 decimals are refused."""
    if isinstance(amount, float):
        raise AmountError(f"amounts are never floats, got {amount!r}: pass a Decimal or a string")
    try:
        d = Decimal(amount)
    except (InvalidOperation, TypeError):
        raise AmountError(f"not a decimal amount: {amount!r}") from None
    if not d.is_finite():
        raise AmountError(f"not a finite amount: {amount!r}")
    units = d.scaleb(PRECISION)
    if units != units.to_integral_value():
        raise AmountError(f"{amount} has more than {PRECISION} decimals")
    return int(units)


def from_units(units: int) -> Decimal:
    return Decimal(units).scaleb(-PRECISION).quantize(UNIT)


def format_units(units: int) -> str:
    """The API's string form: no exponent, trailing zeros dropped (e.g. '1', '0.0001', '-2.5')."""
    s = format(from_units(units), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s
