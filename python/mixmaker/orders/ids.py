"""Client order id limits per venue, and the generator the tracker uses.

Ids are `prefix + 9 base62 chars (microseconds, strictly increasing) + 4 base62 chars (this
process's random tag)`; letters and digits only, so every venue below accepts them.
"""

from __future__ import annotations

from mixmaker._core import ClientIdGenerator

# Longest client order id each venue accepts (the API docs' field limits).
MAX_CLIENT_ID_LEN: dict[str, int] = {
    "binance": 36,  # newClientOrderId ^[.A-Z:/a-z0-9_-]{1,36}$
    "bybit": 36,  # orderLinkId
    "okx": 32,  # clOrdId, letters and digits only
    "kucoin": 40,  # clientOid
    "gate": 28,  # text, after its "t-" prefix
}
DEFAULT_MAX_LEN = 32
DEFAULT_PREFIX = "mm"


def max_len_for(venue: str) -> int:
    return MAX_CLIENT_ID_LEN.get(venue, DEFAULT_MAX_LEN)


def generator_for(venue: str, prefix: str = DEFAULT_PREFIX, start_after: int = 0, instance: str | None = None) -> ClientIdGenerator:
    return ClientIdGenerator(prefix, max_len_for(venue), instance, start_after)


__all__ = ["DEFAULT_PREFIX", "MAX_CLIENT_ID_LEN", "ClientIdGenerator", "generator_for", "max_len_for"]
