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
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

from mixmaker._core import DecimalFormatError, format_fixed_many, parse_decimal

__all__ = [
    "MIXIN_DECIMALS",
    "MAX_DECIMALS",
    "AmountError",
    "Rounding",
    "decimals_of",
    "exact_decimal",
    "format_exact",
    "format_units",
    "format_units_many",
    "rescale",
    "rescale_ratio",
    "round_units",
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
    """What to do with digits finer than the scale: refuse them, round toward -inf / +inf, or to
    the nearest (ties to even, as `Decimal` does by default)."""

    EXACT = "exact"
    FLOOR = "floor"
    CEIL = "ceil"
    HALF_EVEN = "half_even"


_DECIMAL_ROUNDING = {Rounding.FLOOR: ROUND_FLOOR, Rounding.CEIL: ROUND_CEILING, Rounding.HALF_EVEN: ROUND_HALF_EVEN}


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
    whole = scaled.to_integral_value(rounding=_DECIMAL_ROUNDING.get(rounding, ROUND_FLOOR))
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


def format_units_many(values: Iterable[int], decimals: int) -> list[str]:
    """`format_units` of each value, the scale checked once (a report's series of thousands)."""
    _check_scale(decimals)
    if not isinstance(values, (list, tuple)):
        values = list(values)  # read twice below when the core declines it
    fast = format_fixed_many(values, decimals)
    if fast is not None:
        return fast  # every value a plain int within i64: formatted in one call into the core
    out: list[str] = []
    add = out.append
    if decimals == 0:
        for v in values:
            if type(v) is not int:
                raise AmountError(f"units must be an int, got {type(v).__name__}: {v!r}")
            add(str(v))
        return out
    # A series (a report's times, holdings) repeats few fractional parts: each is formatted once.
    p, spec = _POW10[decimals], f"0{decimals}d"
    fracs: dict[int, str] = {}
    for v in values:
        if type(v) is not int:
            raise AmountError(f"units must be an int, got {type(v).__name__}: {v!r}")
        whole, frac = divmod(-v if v < 0 else v, p)
        text = fracs.get(frac)
        if text is None:
            text = fracs[frac] = format(frac, spec)
        add(f"-{whole}.{text}" if v < 0 else f"{whole}.{text}")
    return out


def round_units(value: Fraction | int, rounding: Rounding) -> int:
    """An exact ratio of units as a whole number of them: `round_units(Fraction(5, 2), HALF_EVEN) == 2`.
    `Rounding.EXACT` refuses a ratio that is not whole."""
    if type(value) is int:
        return value
    if not isinstance(value, Fraction):
        raise AmountError(f"units must be an int or a Fraction, got {type(value).__name__}: {value!r}")
    n, d = value.numerator, value.denominator
    q, r = divmod(n, d)
    if not r:
        return q
    if rounding is Rounding.EXACT:
        raise AmountError(f"{value} is not a whole number of units")
    if rounding is Rounding.FLOOR:
        return q
    if rounding is Rounding.CEIL:
        return q + 1
    twice = 2 * r  # HALF_EVEN: 0 < r < d
    return q + 1 if twice > d or (twice == d and q & 1) else q


def rescale(units: int, from_decimals: int, to_decimals: int, *, rounding: Rounding = Rounding.EXACT) -> int:
    """`units` of 10**-from_decimals as units of 10**-to_decimals: `rescale(150, 2, 12) == 1_500_000_000_000`.
    To a coarser scale the dropped digits follow `rounding` (EXACT: they must be zero)."""
    _check_scale(from_decimals)
    _check_scale(to_decimals)
    if type(units) is not int:
        raise AmountError(f"units must be an int, got {type(units).__name__}: {units!r}")
    if to_decimals >= from_decimals:
        return units * _POW10[to_decimals - from_decimals]
    whole, rest = divmod(units, _POW10[from_decimals - to_decimals])
    if not rest:
        return whole  # the common case: no digit dropped, no Fraction built
    return round_units(Fraction(units, _POW10[from_decimals - to_decimals]), rounding)


def rescale_ratio(units: int, from_decimals: int, to_decimals: int) -> Fraction:
    """`units` of 10**-from_decimals as an exact count of 10**-to_decimals (a `Fraction` when it
    is not whole): a fee in 1e-12 of the quote as value units of a market, for exact PnL."""
    _check_scale(from_decimals)
    _check_scale(to_decimals)
    if type(units) is not int:
        raise AmountError(f"units must be an int, got {type(units).__name__}: {units!r}")
    return Fraction(units * _POW10[to_decimals], _POW10[from_decimals])


def format_exact(value: Fraction | int, decimals: int) -> str:
    """An exact ratio of `10**-decimals` units as decimal text: at the scale when it is a whole
    number of units, else with the further digits it needs (`format_exact(Fraction(12345, 2), 2)
    == "61.725"`, half a unit from a mid price). A ratio with no finite decimal expansion (a
    denominator with a prime factor other than 2 and 5) is an `AmountError`."""
    if type(value) is int:
        return format_units(value, decimals)
    if not isinstance(value, Fraction):
        raise AmountError(f"units must be an int or a Fraction, got {type(value).__name__}: {value!r}")
    n, d = value.numerator, value.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        raise AmountError(f"{value} units have no finite decimal expansion")
    extra = max(twos, fives)  # the fewest further digits that make it whole
    return format_units(n * 10**extra // value.denominator, decimals + extra)
