"""A market's rules: how its prices and sizes map to the core's integers, and the steps and
minimums the venue accepts. One type for every layer: connectors turn the venue's numbers into
integers and back with it, controllers size their quotes with it.

- prices are integers of 10**-price_decimals (the book's raw units); the tick is a multiple of one;
- sizes are integers of 10**-size_decimals; the lot is a multiple of one;
- values (quote amounts, and the strategy's fees and PnL) are price x size: `value_decimals`.

The conversions themselves are `mixmaker.money`'s; a number that does not fit the market's
scale is a `MarketRulesError` naming the market.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mixmaker.errors import MixmakerError
from mixmaker.money import AmountError, format_units, to_units

__all__ = ["MarketRules", "MarketRulesError"]


class MarketRulesError(MixmakerError, ValueError):
    """A number that does not fit a market's scale, rules that cannot be used, or an unknown market."""


@dataclass(frozen=True, slots=True)
class MarketRules:
    symbol: str  # the venue's id, e.g. BTCUSDT (what the order journal keeps)
    base: str
    quote: str
    price_decimals: int
    size_decimals: int
    tick: int  # price units
    lot: int  # size units
    min_size: int = 0  # size units
    min_notional: int = 0  # value units: the smallest price x size the venue takes
    unified: str = ""  # ccxt's symbol (BTC/USDT); base/quote when not given

    def __post_init__(self) -> None:
        if not self.unified:
            object.__setattr__(self, "unified", f"{self.base}/{self.quote}")

    @property
    def value_decimals(self) -> int:
        return self.price_decimals + self.size_decimals

    def price(self, text: str | Decimal | int) -> int:
        """A price from the venue or the operator as price units; finer than the scale is an error."""
        return self._units(text, self.price_decimals, "price")

    def size(self, text: str | Decimal | int) -> int:
        """A size as size units; finer than the scale is an error."""
        return self._units(text, self.size_decimals, "size")

    def price_str(self, units: int) -> str:
        """Price units as the exact decimal text a venue takes (`"61659.70"`)."""
        return format_units(units, self.price_decimals)

    def size_str(self, units: int) -> str:
        return format_units(units, self.size_decimals)

    def _units(self, text: str | Decimal | int, decimals: int, what: str) -> int:
        try:
            return to_units(text, decimals, what=f"{self.symbol} {what}")
        except AmountError as e:
            raise MarketRulesError(str(e)) from None
