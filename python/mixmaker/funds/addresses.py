"""Deposit addresses, fetched from the venues, stored, and checked again.

Two kinds: the exchange account's deposit address for an asset (where Mixin withdrawals go, on the
asset's network) and the bot's Mixin deposit entry for the asset's chain (where exchange
withdrawals come back). The first fetch is stored; later fetches must give the same address and
tag. A different one is an alert and a halt (`ADDRESS_CHANGED`): nothing is sent to the new
address, nor to the old one, until an operator clears the halt, which adopts the new address.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

from mixmaker.funds import alerts, halts
from mixmaker.funds.alerts import FundsAlert
from mixmaker.funds.assets import AssetError, AssetSpec, TagRule
from mixmaker.funds.errors import FundsError
from mixmaker.store import Store
from mixmaker.store.base import Transaction

MIGRATIONS = [
    """CREATE TABLE funds_addresses (
        side TEXT NOT NULL, account TEXT NOT NULL, asset TEXT NOT NULL, network TEXT NOT NULL,
        address TEXT NOT NULL, tag TEXT NOT NULL, seen_address TEXT NOT NULL, seen_tag TEXT NOT NULL,
        fetched_ns BIGINT NOT NULL, checked_ns BIGINT NOT NULL, PRIMARY KEY (side, account, asset))""",
]


class AddressSide(enum.Enum):
    EXCHANGE = "exchange"  # an exchange account's deposit address (Mixin -> exchange)
    MIXIN = "mixin"  # the bot's Mixin deposit entry (exchange -> Mixin)


class AddressChangedError(FundsError):
    """A venue now gives another deposit address than the one stored: nothing is sent there."""


@dataclass(frozen=True, slots=True)
class Address:
    side: AddressSide
    account: str  # the exchange account ("binance"), or "mixin"
    asset: str  # the ledger symbol
    network: str
    address: str
    tag: str


MIXIN = "mixin"


class AddressBook:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate("funds_addresses", MIGRATIONS)
        alerts.migrate(store)
        halts.migrate(store)

    def get(self, side: AddressSide, account: str, asset: str) -> Address | None:
        """The stored address (never an unconfirmed new one)."""
        rows = self.store.query("SELECT network, address, tag FROM funds_addresses WHERE side = ? AND account = ? "
                                "AND asset = ?", (side.value, account, asset))
        return Address(side, account, asset, *rows[0]) if rows else None

    def all(self) -> list[Address]:
        rows = self.store.query("SELECT side, account, asset, network, address, tag FROM funds_addresses "
                                "ORDER BY side, account, asset")
        return [Address(AddressSide(r[0]), *r[1:]) for r in rows]

    def owns(self, q: Store | Transaction, side: AddressSide, address: str, tag: str = "") -> Address | None:
        rows = q.query("SELECT account, asset, network, address, tag FROM funds_addresses WHERE side = ? AND address = ? "
                       "AND tag = ?", (side.value, address, tag))
        return Address(side, *rows[0]) if rows else None

    def record(self, side: AddressSide, account: str, asset: str, network: str, address: str, tag: str) -> Address:
        """Stores the first address seen; a later one that differs is an alert and a halt, and
        the stored one is returned (the new one is not used). Raises AddressChangedError then."""
        if not address:
            raise FundsError(f"{side.value} {account} gave no deposit address for {asset}")
        now = time.time_ns()
        with self.store.transaction() as tx:
            tx.execute("INSERT INTO funds_addresses (side, account, asset, network, address, tag, seen_address, seen_tag, "
                       "fetched_ns, checked_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       (side.value, account, asset, network, address, tag, address, tag, now, now))
            stored = tx.query("SELECT network, address, tag FROM funds_addresses WHERE side = ? AND account = ? "
                              "AND asset = ?", (side.value, account, asset))[0]
            tx.execute("UPDATE funds_addresses SET seen_address = ?, seen_tag = ?, checked_ns = ? WHERE side = ? "
                       "AND account = ? AND asset = ?", (address, tag, now, side.value, account, asset))
            changed = (stored[1], stored[2]) != (address, tag) or stored[0] != network
            if changed:
                msg = (f"the {side.value} deposit address of {asset} on {account} was {stored[1]} (tag {stored[2] or '-'}, "
                       f"{stored[0]}) and is now {address} (tag {tag or '-'}, {network}): moves halt until an "
                       "operator checks it and clears the halt (which adopts the new address)")
                halts.raise_halt(tx, halts.HaltKind.ADDRESS_CHANGED, f"{side.value}:{account}", asset, 0, msg,
                                 {"side": side.value, "account": account, "asset": asset, "network": network,
                                  "address": address, "tag": tag})
                alerts.alert(tx, FundsAlert.ADDRESS_CHANGED, f"{side.value}:{account}:{asset}:{address}", msg)
        if changed:
            raise AddressChangedError(msg)
        return Address(side, account, asset, network, address, tag)

    def adopt(self, halt: halts.Halt) -> None:
        """After an operator cleared an ADDRESS_CHANGED halt: the new address becomes the stored one."""
        d = halt.detail
        with self.store.transaction() as tx:
            tx.execute("UPDATE funds_addresses SET network = ?, address = ?, tag = ?, fetched_ns = ? WHERE side = ? "
                       "AND account = ? AND asset = ?",
                       (d["network"], d["address"], d["tag"], time.time_ns(), d["side"], d["account"], d["asset"]))

    # --- fetching ---------------------------------------------------------------------------

    async def exchange_address(self, venue: Any, account: str, spec: AssetSpec) -> Address:
        """The exchange account's deposit address for `spec` on its network (fetched, checked)."""
        va = spec.venues.get(account)
        if va is None:
            raise AssetError(f"asset {spec.symbol} is not configured on {account}")
        got = await venue.deposit_address(va.currency, va.network or None)
        tag = got.tag or ""
        if tag and va.tag_rule is TagRule.NONE:
            raise FundsError(f"{account} gives a tag {tag!r} with its {spec.symbol} address on {va.network}, "
                             "but the asset is configured without tags")
        if not tag and va.tag_rule is TagRule.REQUIRED:
            raise FundsError(f"{account} gives no tag with its {spec.symbol} address on {va.network}, which needs one")
        return self.record(AddressSide.EXCHANGE, account, spec.symbol, va.network, got.address, tag)

    async def mixin_entry(self, mixin: Any, spec: AssetSpec, chain_id: str, network: str) -> Address:
        """The bot's Mixin deposit entry on the asset's chain (fetched, checked)."""
        entry = await mixin.deposit_entry(chain_id)
        return self.record(AddressSide.MIXIN, MIXIN, spec.symbol, network, str(entry.get("destination") or ""),
                           str(entry.get("tag") or ""))
