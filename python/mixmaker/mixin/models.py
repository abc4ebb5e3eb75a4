"""The API objects the client reads, parsed exactly (amounts as integer units, times as ns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mixmaker.mixin.amounts import from_units, to_units
from mixmaker.mixin.times import parse_rfc3339_ns


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    user_id: str
    opponent_id: str
    asset_id: str
    units: int  # signed: positive = incoming
    memo: bytes  # hex-decoded transaction extra
    request_id: str
    transaction_hash: str
    created_at: str  # as sent, the cursor's text
    created_at_ns: int
    deposit: dict[str, Any] | None
    withdrawal: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def amount(self) -> Decimal:
        return from_units(self.units)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Snapshot:
        try:
            memo = bytes.fromhex(d.get("memo") or "")
        except ValueError:  # a legacy plain-text memo
            memo = str(d.get("memo")).encode()
        return cls(d["snapshot_id"], d.get("user_id", ""), d.get("opponent_id", ""), d["asset_id"], to_units(d["amount"]),
                   memo, d.get("request_id", ""), d.get("transaction_hash", ""), d["created_at"],
                   parse_rfc3339_ns(d["created_at"]), d.get("deposit"), d.get("withdrawal"), d)


@dataclass(frozen=True)
class Output:
    output_id: str
    transaction_hash: str
    output_index: int
    asset_id: str
    units: int
    state: str
    sequence: int
    receivers: tuple[str, ...]
    threshold: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Output:
        return cls(d["output_id"], d["transaction_hash"], int(d["output_index"]), d["asset_id"], to_units(d["amount"]),
                   d["state"], int(d["sequence"]), tuple(d.get("receivers") or ()), int(d.get("receivers_threshold", 1)))


@dataclass(frozen=True)
class TransactionRequest:
    request_id: str
    transaction_hash: str
    state: str  # unspent (verified) -> signed (submitted) -> spent (kernel final)
    raw_transaction: str
    views: tuple[str, ...]
    withdrawal_hashes: tuple[str, ...]  # one per withdrawal receiver; "" = not on chain yet
    snapshot_id: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TransactionRequest:
        wh = tuple(r.get("withdrawal_hash", "") for r in d.get("receivers") or () if r.get("destination"))
        return cls(d["request_id"], d.get("transaction_hash", ""), d["state"], d.get("raw_transaction", ""),
                   tuple(d.get("views") or ()), wh, d.get("snapshot_id", ""), d)
