"""The exchange simulator's state as a JSON document, and back.

Persisted: every real account's free and locked balances and the fees collected, every order
(open ones go back on the book, in their original order), every account's trades, the order and
trade counters, each book's update id (so ids never go backwards for a client), and all
deposits, withdrawals and deposit addresses. Not persisted: other participants' liquidity (the
market account and its levels: the feed rebuilds them, so our restored orders rest ahead of it
in the queue), the public trade tape, API keys (the runner re-adds them from its credentials
file), faults and rate-limit windows. Decimals travel as strings, exactly.
"""

from __future__ import annotations

import dataclasses
import functools
from decimal import Decimal
from typing import Any

from mixmaker.sim.exchange.accounts import MARKET
from mixmaker.sim.exchange.capital import Transfer
from mixmaker.sim.exchange.matching import BUY, Fill, Order
from mixmaker.sim.exchange.operations import Venue

FORMAT = 1
_ORDER_DECIMALS = ("price", "orig_qty", "executed_qty", "cum_quote", "locked")
_FILL_DECIMALS = ("price", "qty", "quote_qty", "commission")
_TRANSFER_DECIMALS = ("amount", "fee")


@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _out(obj: Any, decimals: tuple[str, ...]) -> dict[str, Any]:
    # Every field is a plain value (str, int, bool, Decimal): no deep copy needed (asdict is 10x slower).
    cls: type = type(obj)
    return {name: str(v) if name in decimals else v for name in _names(cls) for v in (getattr(obj, name),)}


def _in(d: dict[str, Any], decimals: tuple[str, ...]) -> dict[str, Any]:
    return {k: Decimal(v) if k in decimals else v for k, v in d.items()}


def dump(venue: Venue) -> dict[str, Any]:
    engine, accounts, capital = venue.engine, venue.engine.accounts, venue.capital
    real = sorted((set(accounts._free) | set(accounts._locked)) - {MARKET})
    return {
        "format": FORMAT,
        "balances": {a: {asset: [str(accounts.free(a, asset)), str(accounts.locked(a, asset))] for asset in accounts.assets(a)}
                     for a in real},
        "fees": {asset: str(v) for asset, v in accounts.fees.items()},
        "orders": [_out(o, _ORDER_DECIMALS) for o in engine.orders.values()],
        "fills": {a: [_out(f, _FILL_DECIMALS) for f in fills] for a, fills in engine.fills.items()},
        "next_order_id": engine._next_order_id,
        "next_trade_id": engine._next_trade_id,
        "update_ids": {s: b.update_id for s, b in engine.books.items()},
        "deposits": [_out(t, _TRANSFER_DECIMALS) for t in capital.deposits],
        "withdrawals": [_out(t, _TRANSFER_DECIMALS) for t in capital.withdrawals],
        "addresses": {addr: list(owner) for addr, owner in capital.addresses.items()},
        "external_chain": capital.external_chain,
        "network_switches": [[c, n, d, w] for (c, n), (d, w) in capital.network_switches.items()],
    }


def load(venue: Venue, doc: dict[str, Any]) -> Venue:
    """Fills a fresh `venue` (accounts and keys added, no orders yet) from `dump`'s document."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"exchange simulator state format {doc.get('format')!r}, expected {FORMAT}")
    engine, accounts, capital = venue.engine, venue.engine.accounts, venue.capital
    if engine.orders:
        raise ValueError("restore into a venue that has no orders yet")
    for account, assets in doc["balances"].items():
        for asset, (free, locked) in assets.items():
            accounts._free[account][asset] = Decimal(free)
            accounts._locked[account][asset] = Decimal(locked)
    for asset, value in doc["fees"].items():
        accounts.fees[asset] = Decimal(value)
    accounts.take_touched()
    for symbol, update_id in doc["update_ids"].items():
        if symbol in engine.books:
            engine.books[symbol].update_id = engine.books[symbol].published_id = update_id
    for raw in sorted(doc["orders"], key=lambda o: o["order_id"]):
        order = Order(**_in(raw, _ORDER_DECIMALS))
        engine.orders[order.order_id] = order
        engine._last_by_client_id[(order.account, order.symbol, order.client_order_id)] = order.order_id
        if order.is_open:  # back on the book, its funds already counted in `locked` above
            book = engine.books[order.symbol]
            book.side(order.side).add(order)
            book.touch(order.side == BUY, order.price)
            engine._open_by_client_id[(order.account, order.client_order_id)] = order.order_id
    for book in engine.books.values():
        if book.dirty:
            book.update_id += 1
            book.dirty = False
    engine.fills = {a: [Fill(**_in(f, _FILL_DECIMALS)) for f in fills] for a, fills in doc["fills"].items()}
    engine._next_order_id = doc["next_order_id"]
    engine._next_trade_id = doc["next_trade_id"]
    capital.deposits[:] = [Transfer(**_in(t, _TRANSFER_DECIMALS)) for t in doc["deposits"]]
    capital.withdrawals[:] = [Transfer(**_in(t, _TRANSFER_DECIMALS)) for t in doc["withdrawals"]]
    capital.addresses = {addr: (owner[0], owner[1]) for addr, owner in doc["addresses"].items()}
    capital.external_chain = doc["external_chain"]
    capital.network_switches = {(c, n): (d, w) for c, n, d, w in doc.get("network_switches", [])}
    capital.version += 1
    return venue
