"""Scaled integers (the core's prices and sizes) back to exact decimal strings."""

from __future__ import annotations


def format_scaled(value: int, decimals: int) -> str:
    """`format_scaled(6165970, 2) == "61659.70"`; exact, no float on the way."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"
