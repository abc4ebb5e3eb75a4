"""The one conversion between decimal text and scaled integers (mixmaker.money)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mixmaker.errors import MixmakerError
from mixmaker.money import AmountError, Rounding, format_units, to_decimal, to_units


def test_exact_text_decimal_and_int():
    assert to_units("61659.7", 2) == 6_165_970
    assert to_units("61659.70000", 2) == 6_165_970
    assert to_units("1e-8", 8) == 1
    assert to_units(Decimal("-2.5"), 8) == -250_000_000
    assert to_units(3, 8) == 300_000_000
    assert to_decimal(150, 2) == Decimal("1.50")
    assert format_units(6_165_970, 2) == "61659.70"
    assert format_units(-15, 1) == "-1.5"
    assert format_units(7, 0) == "7"
    assert format_units(150_000_000, 8, trim=True) == "1.5"
    assert format_units(100_000_000, 8, trim=True) == "1"
    assert format_units(-1, 8, trim=True) == "-0.00000001"


@pytest.mark.parametrize("bad", [0.1, float("nan"), True, "1.001", "abc", "", "NaN", "inf", Decimal("Infinity"), None])
def test_refusals_are_typed(bad):
    with pytest.raises(AmountError) as e:
        to_units(bad, 2)
    assert isinstance(e.value, MixmakerError) and isinstance(e.value, ValueError)


@pytest.mark.parametrize("scale", [-1, 19, 2.0, "2"])
def test_bad_scales_are_typed(scale):
    with pytest.raises(AmountError):
        to_units("1", scale)
    with pytest.raises(AmountError):
        format_units(1, scale)


def test_rounding_is_named_not_silent():
    assert to_units("1.239", 2, rounding=Rounding.FLOOR) == 123
    assert to_units("-1.231", 2, rounding=Rounding.FLOOR) == -124
    assert to_units("1.231", 2, rounding=Rounding.CEIL) == 124


@given(st.integers(min_value=-(2**62), max_value=2**62), st.integers(min_value=0, max_value=18))
def test_round_trip(units, decimals):
    text = format_units(units, decimals)
    assert to_units(text, decimals) == units
    assert to_units(format_units(units, decimals, trim=True), decimals) == units
    assert to_decimal(units, decimals) == Decimal(text)


def test_exact_decimal_and_decimals_of_a_step():
    from mixmaker.money import decimals_of, exact_decimal

    assert exact_decimal("1.50") == Decimal("1.50") and exact_decimal(3) == 3
    for bad in (1.5, None, True, "nan", "x", Decimal("Infinity")):
        with pytest.raises(AmountError):
            exact_decimal(bad)
    assert [decimals_of(Decimal(s)) for s in ("0.010", "10", "1E+1", "0.00001000", "1")] == [2, 0, 0, 5, 0]


def test_one_module_converts_scaled_integers():
    """Scaling decimals (`scaleb`, `quantize`, `divmod` by a power of ten) happens in mixmaker.money only.
    Outside it: the
    simulators (sim/), which model the venues in `Decimal` and print it the venues' way (no
    scaled integers there)."""
    import pathlib
    import re

    import mixmaker

    pending = {"money.py"}
    root = pathlib.Path(mixmaker.__file__).parent
    found = sorted(name for p in root.rglob("*.py")
                   if (name := str(p.relative_to(root))) not in pending and not name.startswith("sim/")
                   and re.search(r"\.(scaleb|quantize)\(|divmod\([^)]*10\s*\*\*", p.read_text()))
    assert found == []


def test_ratios_rescaling_and_series():
    from fractions import Fraction

    from mixmaker.money import format_exact, format_units_many, rescale, rescale_ratio, round_units

    assert format_exact(Fraction(12345, 2), 2) == "61.725" and format_exact(Fraction(-1, 2), 5) == "-0.000005"
    assert format_exact(7, 3) == "0.007" and format_exact(Fraction(1, 8), 0) == "0.125"
    with pytest.raises(AmountError):
        format_exact(Fraction(1, 3), 2)
    assert [round_units(Fraction(n, 2), Rounding.HALF_EVEN) for n in (5, 7, -5, -7, 4)] == [2, 4, -2, -4, 2]
    assert round_units(Fraction(-7, 3), Rounding.CEIL) == -2 and round_units(Fraction(-7, 3), Rounding.FLOOR) == -3
    with pytest.raises(AmountError):
        round_units(Fraction(1, 2), Rounding.EXACT)
    assert rescale(150, 2, 12) == 1_500_000_000_000 and rescale(1501, 3, 2, rounding=Rounding.CEIL) == 151
    with pytest.raises(AmountError):
        rescale(1501, 3, 2)
    assert rescale_ratio(20_010_000_001, 12, 5) == Fraction(20_010_000_001, 10**7)
    assert format_units_many([0, -1, 12345], 3) == ["0.000", "-0.001", "12.345"] == [format_units(v, 3) for v in (0, -1, 12345)]
    assert format_units_many([5, -5], 0) == ["5", "-5"]
    assert to_units("1.25", 1, rounding=Rounding.HALF_EVEN) == 12 and to_units("1.35", 1, rounding=Rounding.HALF_EVEN) == 14


@given(st.lists(st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(),
                          st.sampled_from([-(2**63), 2**63 - 1, 2**63, -(2**63) - 1, 0, -1])), max_size=40),
       st.integers(min_value=0, max_value=18))
def test_a_series_is_formatted_as_each_value_alone(values, decimals):
    """The series path (the core formats i64 values in one call, Python the rest) against
    `format_units`, which formats one value in Python: the same text for every value."""
    from mixmaker.money import format_units_many

    assert format_units_many(values, decimals) == [format_units(v, decimals) for v in values]
    assert format_units_many(iter(values), decimals) == [format_units(v, decimals) for v in values]


def test_a_series_refuses_what_a_single_value_refuses():
    from mixmaker.money import format_units_many

    for bad in ([1, True], [1, 2.0], [1, "2"]):
        with pytest.raises(AmountError):
            format_units_many(bad, 2)
    with pytest.raises(AmountError):
        format_units_many([1], 19)
