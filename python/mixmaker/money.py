"""Exact amounts: the one module that turns decimal text into scaled integers and back.

Every layer keeps money as an integer count of `10**-decimals` units (a price at the book's
price scale, a size at its size scale, a Mixin amount at 8 decimals, a ledger balance at its
asset's scale). Text, `Decimal` and `int` come in here and leave as `int`; ints leave as text or
`Decimal` here. Floats are refused: an amount that went through a float is already wrong.

Parsing is Rust's (`mixmaker._core.parse_decimal`: one pass, exact, exponent notation allowed);
a value finer than the scale is an error unless the caller names a rounding, as exchanges floor
prices and sizes to their tick and lot.
"""

from __future__ import annotations

import enum
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from mixmaker._core import DecimalFormatError, parse_decimal

__all__ = [
    "MIXIN_DECIMALS",
    "MAX_DECIMALS",
    "AmountError",
    "Rounding",
    "decimals_of",
    "exact_decimal",
    "format_units",
    "to_decimal",
    "to_units",
]

MIXIN_DECIMALS = 8
"""Mixin's kernel precision: amounts are integers of 1e-8."""

MAX_DECIMALS = 18
"""The finest scale the core handles (10**18 still fits an i64)."""

_POW10: tuple[int, ...] = tuple(10**d for d in range(MAX_DECIMALS + 1))


class AmountError(DecimalFormatError):
    """An amount that is not a finite decimal, or not exact at the scale asked for."""


class Rounding(enum.Enum):
    """What to do with digits finer than the scale: refuse them, or round toward -inf / +inf."""

    EXACT = "exact"
    FLOOR = "floor"
    CEIL = "ceil"


def _check_scale(decimals: int) -> None:
    if type(decimals) is not int or not 0 <= decimals <= MAX_DECIMALS:
        raise AmountError(f"a scale is 0..{MAX_DECIMALS} decimals, got {decimals!r}")


def to_units(
    value: Decimal | str | int, decimals: int, *, what: str = "amount", rounding: Rounding = Rounding.EXACT
) -> int:
    """`to_units("61659.7", 2) == 6165970`. Text, Decimal or int; never float.

    With `Rounding.EXACT` (the default) a non-zero digit past `decimals` is an `AmountError`."""
    _check_scale(decimals)
    if isinstance(value, bool) or isinstance(value, float):
        raise AmountError(f"{what} must be a decimal string, Decimal or int, never {type(value).__name__}: {value!r}")
    if isinstance(value, int):
        return value * _POW10[decimals]
    if isinstance(value, str) and rounding is Rounding.EXACT:
        try:
            return parse_decimal(value, decimals)
        except DecimalFormatError as e:
            raise AmountError(f"{what} {value!r}: {e}") from None
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise AmountError(f"{what} is not a decimal: {value!r}") from None
    if not d.is_finite():
        raise AmountError(f"{what} is not a finite decimal: {value!r}")
    scaled = d.scaleb(decimals)
    whole = scaled.to_integral_value(rounding=ROUND_FLOOR if rounding is not Rounding.CEIL else ROUND_CEILING)
    if rounding is Rounding.EXACT and whole != scaled:
        raise AmountError(f"{what} {value} has more than {decimals} decimals")
    return int(whole)


def exact_decimal(value: Decimal | str | int, *, what: str = "amount") -> Decimal:
    """Text, Decimal or int as an exact, finite `Decimal` (no scale: a balance of an asset whose
    decimals are not known here). Floats, bools, NaN and infinities are an `AmountError`."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        try:
            d = Decimal(value)
        except (InvalidOperation, ValueError):
            raise AmountError(f"{what} is not a decimal: {value!r}") from None
    else:
        raise AmountError(f"{what} must be a decimal string, Decimal or int, never {type(value).__name__}: {value!r}")
    if not d.is_finite():
        raise AmountError(f"{what} is not a finite decimal: {value!r}")
    return d


def decimals_of(step: Decimal) -> int:
    """How many decimals a step needs: `decimals_of(Decimal("0.010")) == 2`, 0 for whole steps."""
    return max(0, -int(exact_decimal(step, what="step").normalize().as_tuple().exponent))


def to_decimal(units: int, decimals: int) -> Decimal:
    """The exact `Decimal` of `units` at `decimals` (`to_decimal(150, 2) == Decimal("1.50")`)."""
    _check_scale(decimals)
    return Decimal(units).scaleb(-decimals)


def format_units(units: int, decimals: int, *, trim: bool = False) -> str:
    """Exact decimal text: `format_units(6165970, 2) == "61659.70"`.

    `trim=True` drops trailing zeros and a bare point, as APIs such as Mixin's want
    (`format_units(150_000_000, 8, trim=True) == "1.5"`)."""
    _check_scale(decimals)
    if type(units) is not int:
        raise AmountError(f"units must be an int, got {type(units).__name__}: {units!r}")
    sign = "-" if units < 0 else ""
    if decimals == 0:
        return f"{sign}{abs(units)}"
    whole, frac = divmod(abs(units), _POW10[decimals])
    text = f"{frac:0{decimals}d}"
    if trim:
        text = text.rstrip("0")
        return f"{sign}{whole}.{text}" if text else f"{sign}{whole}"
    return f"{sign}{whole}.{text}"
