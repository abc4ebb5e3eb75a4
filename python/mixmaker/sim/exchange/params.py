"""Request parameters read the way Binance reads them: required, exact decimals, integers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from mixmaker.sim.exchange.errors import BadParameter, IllegalValue

DECIMAL_PARAM = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")


def required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise BadParameter(f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def decimal(params: Mapping[str, str], name: str) -> Decimal:
    """A decimal parameter exactly as Binance accepts it: plain digits, no sign, no exponent."""
    text = required(params, name)
    if not DECIMAL_PARAM.fullmatch(text):
        raise IllegalValue(
            f"Illegal characters found in parameter '{name}'; legal range is '{DECIMAL_PARAM.pattern}'."
        )
    return Decimal(text)


def integer(params: Mapping[str, str], name: str) -> int:
    try:
        return int(required(params, name))
    except ValueError:
        raise IllegalValue(f"Illegal characters found in parameter '{name}'.") from None
