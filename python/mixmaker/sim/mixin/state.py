"""What the simulated Mixin keeps: users and sessions, assets, UTXOs, snapshots, ghost keys and
transaction requests; and the checks the real sequencer makes before money moves.

All amounts are integer units of 1e-8. Every public method takes the state lock, so the HTTP
handlers and a test thread scripting users can share one state.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import blake3

from mixmaker.errors import MixmakerError
from mixmaker.mixin import curve, kernel
from mixmaker.mixin.amounts import format_units
from mixmaker.mixin.errors import DESCRIPTIONS
from mixmaker.mixin.ids import hash_members, kernel_asset_id, unique_object_id
from mixmaker.sim import networks
from mixmaker.sim.mixin.clock import SimClock, rfc3339nano

FEE_USER_ID = "674d6776-d600-4346-af46-58e77d8df185"  # Mixin's withdrawal-fee receiver (MixinCashier)
PAGE_LIMIT = 500


class SimError(MixmakerError):
    """An application error the server answers as HTTP 202 with Mixin's code."""

    def __init__(self, code: int, extra: Any = None, description: str = "") -> None:
        self.code = code
        self.extra = extra or {}
        self.description = description or DESCRIPTIONS.get(code, "error")
        super().__init__(f"{code} {self.description} {self.extra}")


@dataclass
class SimUser:
    user_id: str
    full_name: str
    view_private: bytes  # the sequencer-side view scalar of this user's outputs
    spend_public: bytes
    session_keys: dict[str, bytes] = field(default_factory=dict)  # session_id -> Ed25519 public key
    safe_registered: bool = True
    is_app: bool = False


@dataclass
class SimAsset:
    asset_id: str
    symbol: str
    name: str
    chain_id: str
    precision: int = 8
    fee_asset_id: str = ""  # "" = the asset itself
    withdrawal_fee: int = 0
    min_withdrawal: int = 1
    max_withdrawal: int = 10**20
    address_pattern: str = r"^[0-9A-Za-z]{20,64}$"
    memo_possibility: str = "negative"  # negative / positive / possible

    @property
    def fee_asset(self) -> str:
        return self.fee_asset_id or self.asset_id

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "safe_asset", "asset_id": self.asset_id, "chain_id": self.chain_id,
            "fee_asset_id": self.fee_asset, "kernel_asset_id": kernel_asset_id(self.asset_id),
            "symbol": self.symbol, "name": self.name, "display_symbol": self.symbol, "display_name": self.name,
            "icon_url": "", "precision": self.precision, "dust": "0.0001", "confirmations": 1,
            "asset_key": self.asset_id, "price_usd": "0", "price_btc": "0", "change_usd": "0", "change_btc": "0",
            "withdrawal_memo_possibility": self.memo_possibility, "level": 1,
        }


@dataclass
class Utxo:
    output_id: str
    transaction_hash: str
    output_index: int
    asset_id: str
    amount: int
    mask: bytes
    keys: tuple[bytes, ...]
    receivers: tuple[str, ...]
    threshold: int
    senders: tuple[str, ...]
    extra: bytes
    sequence: int
    created_at: int
    state: str = "unspent"
    signed_by: str = ""
    updated_at: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "kernel_output", "output_id": self.output_id, "transaction_hash": self.transaction_hash,
            "output_index": self.output_index, "asset_id": self.asset_id, "kernel_asset_id": kernel_asset_id(self.asset_id),
            "amount": format_units(self.amount), "mask": self.mask.hex(), "keys": [k.hex() for k in self.keys],
            "senders_hash": hash_members(self.senders) if self.senders else "", "senders_threshold": 1,
            "senders": list(self.senders), "receivers_hash": hash_members(self.receivers),
            "receivers_threshold": self.threshold, "receivers": list(self.receivers), "extra": self.extra.hex(),
            "state": self.state, "sequence": self.sequence, "created_at": rfc3339nano(self.created_at),
            "updated_at": rfc3339nano(self.updated_at or self.created_at), "signed_by": self.signed_by,
            "signers": [], "signed_at": "", "spent_at": "", "request_id": "", "inscription_hash": "",
        }


@dataclass
class Snapshot:
    snapshot_id: str
    user_id: str
    opponent_id: str
    transaction_hash: str
    asset_id: str
    amount: int
    memo: bytes
    request_id: str
    created_at: int
    seq: int
    deposit: dict[str, Any] | None = None
    withdrawal: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        d = {
            "type": "snapshot", "snapshot_id": self.snapshot_id, "user_id": self.user_id,
            "opponent_id": self.opponent_id, "transaction_hash": self.transaction_hash, "asset_id": self.asset_id,
            "kernel_asset_id": kernel_asset_id(self.asset_id), "amount": format_units(self.amount),
            "memo": self.memo.hex(), "request_id": self.request_id, "created_at": rfc3339nano(self.created_at),
            "level": 1, "inscription_hash": "",
        }
        if self.deposit is not None:
            d["deposit"] = self.deposit
        if self.withdrawal is not None:
            d["withdrawal"] = dict(self.withdrawal)
        return d


@dataclass
class ChainDeposit:
    """A deposit the external chain reported: pending until it has `required` confirmations,
    then credited once (an output and a snapshot), however often it is reported."""

    deposit_hash: str
    deposit_index: int
    user_id: str
    asset_id: str
    amount: int
    destination: str
    tag: str
    sender: str
    confirmations: int
    required: int
    created_at: int
    updated_at: int
    snapshot_id: str = ""  # set when credited

    @property
    def key(self) -> str:
        return f"{self.deposit_hash}:{self.deposit_index}"

    def to_json(self, state: SimState) -> dict[str, Any]:
        """The pending-deposit object of `GET /safe/deposits`."""
        asset = state.assets[self.asset_id]
        return {
            "type": "deposit", "deposit_id": str(uuid.UUID(bytes=hashlib.md5(self.key.encode()).digest(), version=4)),
            "destination": self.destination, "tag": self.tag, "chain_id": asset.chain_id, "asset_id": self.asset_id,
            "asset_key": asset.asset_id, "amount": format_units(self.amount), "transaction_hash": self.deposit_hash,
            "output_index": self.deposit_index, "block_hash": "", "block_number": 0,
            "confirmations": self.confirmations, "threshold": self.required,
            "state": "confirmed" if self.snapshot_id else "pending",
            "created_at": rfc3339nano(self.created_at), "updated_at": rfc3339nano(self.updated_at),
        }


@dataclass
class GhostGrant:
    receivers: tuple[str, ...]
    index: int
    mask: bytes


@dataclass
class TxRequest:
    request_id: str
    user_id: str
    raw: bytes  # unsigned encoding
    tx: kernel.Transaction
    asset_id: str
    views: list[bytes]
    created_at: int
    state: str = "unspent"
    updated_at: int = 0
    signed_raw: bytes = b""
    snapshot_id: str = ""
    snapshot_at: int = 0
    withdrawal_hash: str = ""
    withdrawal_due: int = 0  # ns; when the chain hash appears (or the withdrawal fails)
    withdrawal_fails: bool = False

    @property
    def hash(self) -> str:
        return self.tx.hash().hex()


class SimState:
    def __init__(self, *, seed: int = 0, clock: SimClock | None = None, withdrawal_delay_s: float = 0.0,
                 finality_delay_s: float = 0.0, snapshot_time_step_ns: int = 0) -> None:
        self.clock = clock or SimClock()
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.users: dict[str, SimUser] = {}
        self.sessions: dict[str, str] = {}  # session_id -> user_id
        self.assets: dict[str, SimAsset] = {}
        self.assets_by_kernel_id: dict[bytes, SimAsset] = {}
        self.utxos: dict[tuple[str, int], Utxo] = {}
        self.snapshots: list[Snapshot] = []
        self.grants: dict[bytes, GhostGrant] = {}
        self.requests: dict[str, TxRequest] = {}
        self.requests_by_hash: dict[str, str] = {}
        self.deposit_entries: dict[tuple[str, str], dict[str, Any]] = {}
        self.withdrawal_delay_s = withdrawal_delay_s
        # Between broadcast and kernel finality a request is `signed` and its inputs are locked:
        # another transaction spending them gets 10105.
        self.finality_delay_s = finality_delay_s
        self._unfinal: list[tuple[int, str, TxRequest, kernel.Transaction, bytes]] = []
        self.failing_addresses: set[str] = set()  # withdrawals there fail (without an external chain;
        # with one, the chain's FAIL fault decides)
        # > 0: a snapshot's created_at is rounded down to a multiple of this, so many share one
        # instant (a coarse server clock); the order between them stays the order they happened.
        self.snapshot_time_step_ns = snapshot_time_step_ns
        self.seen_jti: set[str] = set()
        self._sequence = 0
        self._snap_seq = 0
        # With an external chain attached (mixmaker.sim.chain), a withdrawal gets its hash, or
        # fails, when the chain says so, not after `withdrawal_delay_s`.
        self.external_chain = False
        self.chain_deposits: dict[str, ChainDeposit] = {}  # "<deposit hash>:<index>" -> deposit
        self.echoes: set[str] = set()  # snapshot ids a listing returns twice (duplicated notification)
        self._entry_owner: dict[tuple[str, str], tuple[str, str]] = {}  # (destination, tag) -> (user, chain)
        self.version = 0  # bumped by every change worth persisting (see mixmaker.sim.mixin.persist)
        self.add_user(FEE_USER_ID, "Mixin fee")

    # --- set-up --------------------------------------------------------------------------

    def _random_bytes(self, n: int) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def _new_uuid(self) -> str:
        return str(uuid.UUID(bytes=self._random_bytes(16), version=4))

    def add_user(self, user_id: str | None = None, full_name: str = "user", *, spend_public: bytes | None = None) -> SimUser:
        with self.lock:
            uid = user_id or self._new_uuid()
            if spend_public is None:
                spend_public = curve.public_from_seed(self._random_bytes(32))
            user = SimUser(uid, full_name, curve.scalar_from_bytes(self._random_bytes(64)), spend_public)
            self.users[uid] = user
            self.version += 1
            return user

    def add_app(self, app_id: str, session_id: str, session_public_key: bytes, spend_public_key: bytes,
                *, safe_registered: bool = True) -> SimUser:
        with self.lock:
            user = self.users.get(app_id) or self.add_user(app_id, "bot", spend_public=spend_public_key)
            user.spend_public, user.is_app, user.safe_registered = spend_public_key, True, safe_registered
            user.session_keys[session_id] = session_public_key
            self.sessions[session_id] = app_id
            self.version += 1
            return user

    def add_asset(self, asset: SimAsset) -> SimAsset:
        with self.lock:
            self.assets[asset.asset_id] = asset
            self.assets_by_kernel_id[bytes.fromhex(kernel_asset_id(asset.asset_id))] = asset
            self.version += 1
            return asset

    def asset(self, asset_id: str) -> SimAsset:
        a = self.assets.get(asset_id)
        if a is None:
            raise SimError(404, {"asset_id": asset_id})
        return a

    def user(self, user_id: str) -> SimUser:
        u = self.users.get(user_id)
        if u is None:
            raise SimError(404, {"user_id": user_id})
        return u

    # --- ghost keys ----------------------------------------------------------------------

    def ghost_keys(self, receivers: list[str], index: int, hint: str) -> tuple[bytes, list[bytes]]:
        """One-time keys for an output to `receivers`; the same hint gives the same keys."""
        with self.lock:
            members = tuple(sorted(receivers))
            if not members or len(set(members)) != len(members):
                raise SimError(20150, {"receivers": list(receivers)})
            users = [self.user(m) for m in members]
            seed = hashlib.sha512(f"ghost:{hint}:{index}:{','.join(members)}".encode()).digest()
            r = curve.scalar_from_bytes(seed)
            mask = curve.public_from_scalar(r)
            keys = [curve.ghost_public_key(r, curve.public_from_scalar(u.view_private), u.spend_public, index) for u in users]
            for k in keys:
                self.grants[k] = GhostGrant(members, index, mask)
            self.version += 1
            return mask, keys

    # --- outputs and snapshots -----------------------------------------------------------

    def _new_utxo(self, tx_hash: str, index: int, asset_id: str, amount: int, receivers: tuple[str, ...],
                  threshold: int, senders: tuple[str, ...], extra: bytes, now: int,
                  mask: bytes | None = None, keys: tuple[bytes, ...] | None = None) -> Utxo:
        if mask is None or keys is None:
            mask, klist = self.ghost_keys(list(receivers), index, f"{tx_hash}:{index}")
            keys = tuple(klist)
        self._sequence += 1
        self.version += 1
        u = Utxo(str(uuid.UUID(bytes=hashlib.md5(f"{tx_hash}:{index}".encode()).digest(), version=4)), tx_hash, index,
                 asset_id, amount, mask, keys, receivers, threshold, senders, extra, self._sequence, now)
        self.utxos[(tx_hash, index)] = u
        return u

    def _snapshot(self, user_id: str, opponent_id: str, tx_hash: str, asset_id: str, amount: int, memo: bytes,
                  request_id: str, now: int, **kw: Any) -> Snapshot:
        self._snap_seq += 1
        if self.snapshot_time_step_ns > 0:
            now -= now % self.snapshot_time_step_ns
        self.version += 1
        s = Snapshot(self._new_uuid(), user_id, opponent_id, tx_hash, asset_id, amount, memo, request_id, now,
                     self._snap_seq, **kw)
        self.snapshots.append(s)
        return s

    def deposit(self, user_id: str, asset_id: str, amount: int, *, memo: bytes = b"", sender: str = "",
                at_ns: int | None = None) -> Snapshot:
        """A chain deposit confirmed for `user_id`: a new output and a snapshot with `deposit`."""
        with self.lock:
            self.asset(asset_id)
            self.user(user_id)
            now = at_ns or self.clock.now_ns()
            tx_hash = blake3.blake3(self._random_bytes(32)).hexdigest()
            deposit_hash = self._random_bytes(32).hex()
            self._new_utxo(tx_hash, 0, asset_id, amount, (user_id,), 1, (), memo, now)
            dep = {"deposit_hash": deposit_hash, "deposit_index": 0, "sender": sender or "chain-sender",
                   "destination": self._entry(user_id, self.asset(asset_id).chain_id)["destination"], "tag": ""}
            return self._snapshot(user_id, "", tx_hash, asset_id, amount, memo, "", now, deposit=dep)

    def network_of(self, asset: SimAsset) -> str:
        """The chain an asset lives on, named by the chain asset's symbol (see mixmaker.sim.networks)."""
        chain = self.assets.get(asset.chain_id)
        return chain.symbol if chain is not None else asset.symbol

    def user_sends(self, sender_id: str, receiver_id: str, asset_id: str, amount: int, memo: bytes = b"",
                   *, request_id: str | None = None, at_ns: int | None = None) -> Snapshot:
        """A simulated user pays `receiver_id` from the user's own outputs (the sequencer signs for
        users it simulates). Returns the receiver's snapshot."""
        with self.lock:
            if amount <= 0:
                raise SimError(10002, {"field": "amount"})
            if len(memo) > kernel.EXTRA_LIMIT:
                raise SimError(10002, {"field": "memo", "reason": "longer than 256 bytes"})
            self.asset(asset_id)
            self.user(receiver_id)
            owned = sorted((u for u in self.utxos.values() if u.receivers == (sender_id,) and u.asset_id == asset_id
                            and u.state == "unspent"), key=lambda u: u.sequence)
            picked, total = [], 0
            for u in owned:
                if total >= amount:
                    break
                picked.append(u)
                total += u.amount
            if total < amount:
                raise SimError(20117, {"user_id": sender_id, "asset_id": asset_id})
            now = at_ns or self.clock.now_ns()
            request_id = request_id or self._new_uuid()
            tx_hash = blake3.blake3(f"user-send:{request_id}".encode()).hexdigest()
            for u in picked:
                u.state, u.signed_by, u.updated_at = "spent", request_id, now
            self._new_utxo(tx_hash, 0, asset_id, amount, (receiver_id,), 1, (sender_id,), memo, now)
            if total > amount:
                self._new_utxo(tx_hash, 1, asset_id, total - amount, (sender_id,), 1, (sender_id,), b"", now)
            self._snapshot(sender_id, receiver_id, tx_hash, asset_id, -amount, memo, request_id, now)
            return self._snapshot(receiver_id, sender_id, tx_hash, asset_id, amount, memo, request_id, now)

    def balance(self, user_id: str, asset_id: str) -> int:
        with self.lock:
            self._advance()
            return sum(u.amount for u in self.utxos.values()
                       if u.receivers == (user_id,) and u.asset_id == asset_id and u.state == "unspent")

    def list_snapshots(self, user_id: str, *, asset: str = "", opponent: str = "", offset: int | None = None,
                       limit: int = PAGE_LIMIT, order: str = "DESC", exclusive: bool = False,
                       newest_first: bool = False) -> list[Snapshot]:
        """One page. `offset` is inclusive, as Mixin's (`exclusive` leaves the rows at that instant
        out); `newest_first` sorts DESC whatever `order` filtered by (a server ignoring `order`)."""
        with self.lock:
            self._advance()
            rows = [s for s in self.snapshots if s.user_id == user_id and (not asset or s.asset_id == asset)
                    and (not opponent or s.opponent_id == opponent)]
            if offset is not None:
                if order == "ASC":
                    rows = [s for s in rows if s.created_at > offset or (not exclusive and s.created_at == offset)]
                else:
                    rows = [s for s in rows if s.created_at < offset or (not exclusive and s.created_at == offset)]
            rows.sort(key=lambda s: (s.created_at, s.seq), reverse=order != "ASC" or newest_first)
            if self.echoes:  # a duplicated notification: the same snapshot, served twice
                rows = [x for s in rows for x in ((s, s) if s.snapshot_id in self.echoes else (s,))]
            return rows[:limit]

    def snapshot(self, user_id: str, snapshot_id: str) -> Snapshot:
        with self.lock:
            self._advance()
            for s in self.snapshots:
                if s.snapshot_id == snapshot_id and s.user_id == user_id:
                    return s
            raise SimError(404, {"snapshot_id": snapshot_id})

    def list_outputs(self, user_id: str, *, members: str, threshold: int, asset: str = "", state: str = "",
                     offset: int = 0, limit: int = PAGE_LIMIT, order: str = "ASC") -> list[Utxo]:
        with self.lock:
            self._advance()
            rows = [u for u in self.utxos.values() if user_id in u.receivers and hash_members(u.receivers) == members
                    and u.threshold == threshold and (not asset or u.asset_id == asset) and (not state or u.state == state)]
            if order == "ASC":
                rows = sorted((u for u in rows if u.sequence >= offset), key=lambda u: u.sequence)  # inclusive
            else:
                rows = sorted((u for u in rows if not offset or u.sequence <= offset), key=lambda u: -u.sequence)
            return rows[:limit]

    # --- deposit entries -------------------------------------------------------------------

    def _entry(self, user_id: str, chain_id: str) -> dict[str, Any]:
        key = (user_id, chain_id)
        if key not in self.deposit_entries:
            chain = self.assets.get(chain_id)
            # An address shaped like the chain's, so an exchange (or Mixin) withdrawal can reach it.
            dest = networks.address(chain.symbol if chain else chain_id, f"mixin-entry:{user_id}:{chain_id}")
            self.deposit_entries[key] = {
                "type": "deposit_entry", "entry_id": str(uuid.UUID(bytes=hashlib.md5(dest.encode()).digest(), version=4)),
                "threshold": 1, "members": [user_id], "destination": dest, "tag": "", "signature": "",
                "chain_id": chain_id, "is_primary": True,
            }
            self._entry_owner[(dest, "")] = key
            self.version += 1
        return self.deposit_entries[key]

    def deposit_entry(self, user_id: str, chain_id: str) -> dict[str, Any]:
        with self.lock:
            if not any(a.chain_id == chain_id for a in self.assets.values()):
                raise SimError(10002, {"field": "chain_id"})
            return self._entry(user_id, chain_id)

    # --- transactions ----------------------------------------------------------------------

    def create_request(self, user_id: str, request_id: str, raw_hex: str) -> TxRequest:
        with self.lock:
            self._advance()
            try:
                raw = bytes.fromhex(raw_hex)
                tx = kernel.decode(raw)
            except ValueError as e:
                raise SimError(10002, {"field": "raw", "reason": str(e)}) from None
            unsigned = kernel.encode(tx.unsigned())
            known = self.requests.get(request_id)
            if known is not None:
                if known.raw != unsigned or known.user_id != user_id:
                    raise SimError(20125, {"request_id": request_id})
                return known
            asset = self._verify(user_id, tx, for_broadcast=False)
            user = self.user(user_id)
            views = [curve.ghost_view_scalar(user.view_private, self.utxos[(i.hash.hex(), i.index)].mask, i.index)
                     for i in tx.inputs]
            now = self.clock.now_ns()
            req = TxRequest(request_id, user_id, unsigned, tx.unsigned(), asset.asset_id, views, now, updated_at=now)
            self.requests[request_id] = req
            self.requests_by_hash[req.hash] = request_id
            self.version += 1
            return req

    def _verify(self, user_id: str, tx: kernel.Transaction, *, for_broadcast: bool, request_id: str = "") -> SimAsset:
        """The sequencer's checks: inputs exist, unspent and ours; keys issued; sums balance; fees paid."""
        user = self.user(user_id)
        if not user.safe_registered:
            raise SimError(10404)
        asset = self.assets_by_kernel_id.get(tx.asset)
        if asset is None:
            raise SimError(10002, {"field": "asset", "reason": "unknown asset"})
        if not tx.inputs:
            raise SimError(10002, {"field": "inputs", "reason": "no inputs"})
        if len(tx.extra) > kernel.EXTRA_LIMIT:
            raise SimError(10002, {"field": "extra", "reason": "longer than 256 bytes"})
        seen, total_in = set(), 0
        for i in tx.inputs:
            key = (i.hash.hex(), i.index)
            if key in seen:
                raise SimError(10002, {"field": "inputs", "reason": "duplicate input"})
            seen.add(key)
            u = self.utxos.get(key)
            if u is None:
                raise SimError(10002, {"field": "inputs", "reason": f"input {key[0]}:{key[1]} not found"})
            if u.asset_id != asset.asset_id:
                raise SimError(10002, {"field": "inputs", "reason": "input of another asset"})
            if u.receivers != (user_id,) or u.threshold != 1:
                raise SimError(403, {"field": "inputs", "reason": f"input {key[0]}:{key[1]} is not yours"})
            if u.state == "spent" and u.signed_by != request_id:
                raise SimError(10002, {"field": "inputs", "reason": f"input {key[0]}:{key[1]} already spent"})
            if u.state == "signed" and u.signed_by != request_id:
                raise SimError(10105, {"field": "inputs"})
            total_in += u.amount
        total_out, fee_paid = 0, 0
        for n, o in enumerate(tx.outputs):
            if o.amount <= 0:
                raise SimError(10002, {"field": "outputs", "reason": f"output {n} has no amount"})
            total_out += o.amount
            if o.type == kernel.OUTPUT_WITHDRAWAL_SUBMIT:
                self._check_withdrawal(asset, o)
            elif o.type == kernel.OUTPUT_SCRIPT:
                grant = self._grant_of(o, n)
                if grant.receivers == (FEE_USER_ID,):
                    fee_paid += o.amount
            else:
                raise SimError(10002, {"field": "outputs", "reason": f"output type {o.type:#x} not accepted"})
        if total_in != total_out:
            raise SimError(10002, {"field": "outputs", "reason": f"inputs {total_in} != outputs {total_out}"})
        if any(o.type == kernel.OUTPUT_WITHDRAWAL_SUBMIT for o in tx.outputs) and asset.fee_asset == asset.asset_id:
            if fee_paid == 0:
                raise SimError(20124, {"fee": format_units(asset.withdrawal_fee)})
            if fee_paid < asset.withdrawal_fee:
                raise SimError(20135, {"fee": format_units(asset.withdrawal_fee)})
        return asset

    def _check_withdrawal(self, asset: SimAsset, o: kernel.Output) -> None:
        w = o.withdrawal
        if w is None or o.keys:
            raise SimError(10002, {"field": "outputs", "reason": "withdrawal output without address"})
        if not re.match(asset.address_pattern, w.address):
            raise SimError(30102, {"destination": w.address})
        if (asset.memo_possibility == "negative" and w.tag) or (asset.memo_possibility == "positive" and not w.tag):
            raise SimError(20131, {"tag": w.tag})
        if o.amount < asset.min_withdrawal:
            raise SimError(20127, {"minimum": format_units(asset.min_withdrawal)})
        if o.amount > asset.max_withdrawal:
            raise SimError(20134, {"maximum": format_units(asset.max_withdrawal)})

    def _grant_of(self, o: kernel.Output, n: int) -> GhostGrant:
        found = [self.grants.get(k) for k in o.keys]
        # every key of the output must come from one and the same /safe/keys answer
        grant = found[0] if found and all(g is not None and g is found[0] for g in found) else None
        if grant is None or grant.mask != o.mask or grant.index != n or len(o.keys) != len(grant.receivers):
            raise SimError(10002, {"field": "outputs", "reason": f"output {n} keys were not issued by /safe/keys for it"})
        if len(o.script) != 3 or o.script[:2] != b"\xff\xfe" or not 1 <= o.script[2] <= len(grant.receivers):
            raise SimError(10002, {"field": "outputs", "reason": f"output {n} script is not a valid threshold"})
        return grant

    def broadcast(self, user_id: str, items: list[tuple[str, str]]) -> list[TxRequest]:
        """Verifies the whole batch (a withdrawal and its fee transaction go together), then applies it."""
        with self.lock:
            self._advance()
            staged: list[tuple[TxRequest, kernel.Transaction, bytes]] = []
            for request_id, raw_hex in items:
                req = self.requests.get(request_id)
                if req is None or req.user_id != user_id:
                    raise SimError(404, {"request_id": request_id})
                try:
                    raw = bytes.fromhex(raw_hex)
                    tx = kernel.decode(raw)
                except ValueError as e:
                    raise SimError(10002, {"field": "raw", "reason": str(e)}) from None
                if kernel.encode(tx.unsigned()) != req.raw:
                    raise SimError(20125, {"request_id": request_id})
                if req.state != "unspent":
                    continue  # already broadcast: the same request returns the same result
                self._verify(user_id, tx, for_broadcast=True, request_id=request_id)
                self._check_signatures(tx)
                staged.append((req, tx, raw))
            self._check_separate_fees([t for _, t, _ in staged])
            now = self.clock.now_ns()
            for req, tx, raw in staged:
                if self.finality_delay_s > 0:
                    for i in tx.inputs:
                        u = self.utxos[(i.hash.hex(), i.index)]
                        u.state, u.signed_by, u.updated_at = "signed", req.request_id, now
                    req.state, req.signed_raw, req.updated_at = "signed", raw, now
                    self._unfinal.append((now + int(self.finality_delay_s * 1e9), user_id, req, tx, raw))
                    self.version += 1
                else:
                    self._apply(user_id, req, tx, raw, now)
            return [self.requests[r] for r, _ in items]

    def _advance(self) -> None:
        """Applies what the passing of (simulated) time has made true: finality, chain hashes."""
        now = self.clock.now_ns()
        due = [t for t in self._unfinal if t[0] <= now]
        self._unfinal = [t for t in self._unfinal if t[0] > now]
        for _, user_id, req, tx, raw in due:
            self._apply(user_id, req, tx, raw, self.clock.now_ns())
        if not self.external_chain:
            self._settle_withdrawals()

    def _check_signatures(self, tx: kernel.Transaction) -> None:
        if len(tx.signatures) != len(tx.inputs):
            raise SimError(10002, {"field": "signatures", "reason": "one signature map per input"})
        msg = tx.hash()
        for n, (i, sm) in enumerate(zip(tx.inputs, tx.signatures, strict=True)):
            u = self.utxos[(i.hash.hex(), i.index)]
            sig = sm.get(0)
            if sig is None or not curve.verify(u.keys[0], msg, sig):
                raise SimError(10002, {"field": "signatures", "reason": f"input {n} signature invalid"})

    def _check_separate_fees(self, batch: list[kernel.Transaction]) -> None:
        """A withdrawal whose fee is in another asset needs, in the same batch, a transaction that
        references it and pays the fee receiver."""
        for tx in batch:
            asset = self.assets_by_kernel_id[tx.asset]
            if asset.fee_asset == asset.asset_id or not any(o.type == kernel.OUTPUT_WITHDRAWAL_SUBMIT for o in tx.outputs):
                continue
            h = tx.hash()
            fee_asset = self.asset(asset.fee_asset)
            paid = sum(o.amount for f in batch if h in f.references and f.asset == bytes.fromhex(kernel_asset_id(fee_asset.asset_id))
                       for n, o in enumerate(f.outputs) if o.type == kernel.OUTPUT_SCRIPT
                       and self._grant_of(o, n).receivers == (FEE_USER_ID,))
            if paid == 0:
                raise SimError(20124, {"fee_asset_id": fee_asset.asset_id, "fee": format_units(asset.withdrawal_fee)})
            if paid < asset.withdrawal_fee:
                raise SimError(20135, {"fee": format_units(asset.withdrawal_fee)})

    def _apply(self, user_id: str, req: TxRequest, tx: kernel.Transaction, raw: bytes, now: int) -> None:
        tx_hash = req.hash
        for i in tx.inputs:
            u = self.utxos[(i.hash.hex(), i.index)]
            u.state, u.signed_by, u.updated_at = "spent", req.request_id, now
        sent_out, withdrawal = 0, None
        receivers_total: dict[tuple[str, ...], int] = {}
        for n, o in enumerate(tx.outputs):
            if o.type == kernel.OUTPUT_WITHDRAWAL_SUBMIT:
                withdrawal = o.withdrawal
                sent_out += o.amount
                continue
            g = self.grants[o.keys[0]]
            self._new_utxo(tx_hash, n, req.asset_id, o.amount, g.receivers, o.script[2], (user_id,), tx.extra, now,
                           mask=o.mask, keys=o.keys)
            if g.receivers != (user_id,):
                sent_out += o.amount
                receivers_total[g.receivers] = receivers_total.get(g.receivers, 0) + o.amount
        payees = [r for r in receivers_total if r != (FEE_USER_ID,)]
        opponent = payees[0][0] if len(payees) == 1 and len(payees[0]) == 1 else ""
        wd = None
        if withdrawal is not None:
            wd = {"withdrawal_hash": "", "receiver": withdrawal.address}
            req.withdrawal_due = now + int(self.withdrawal_delay_s * 1e9)
            req.withdrawal_fails = withdrawal.address in self.failing_addresses
        snap = self._snapshot(user_id, opponent, tx_hash, req.asset_id, -sent_out, tx.extra, req.request_id, now,
                              withdrawal=wd)
        for members, amount in receivers_total.items():
            if len(members) == 1 and members[0] in self.users:
                self._snapshot(members[0], user_id, tx_hash, req.asset_id, amount, tx.extra, req.request_id, now)
        req.state, req.signed_raw, req.updated_at = "spent", raw, now
        req.snapshot_id, req.snapshot_at = snap.snapshot_id, now

    def _settle_withdrawals(self) -> None:
        """Withdrawals get their chain hash once their delay has passed, or fail and are refunded."""
        now = self.clock.now_ns()
        for req in self.requests.values():
            if not req.withdrawal_due or req.withdrawal_hash or req.withdrawal_due > now:
                continue
            if req.withdrawal_fails:
                self._fail_withdrawal(req, now)
            else:
                self._withdrawal_sent(req, hashlib.sha256(f"chain:{req.request_id}".encode()).hexdigest())

    def _withdrawal_sent(self, req: TxRequest, withdrawal_hash: str) -> None:
        req.withdrawal_hash = withdrawal_hash
        snap = next(s for s in self.snapshots if s.snapshot_id == req.snapshot_id)
        assert snap.withdrawal is not None
        snap.withdrawal["withdrawal_hash"] = withdrawal_hash
        self.version += 1

    def _fail_withdrawal(self, req: TxRequest, now: int) -> None:
        """The withdrawal never reaches the chain: its hash stays blank and the amount (not the
        fee) comes back as a new output with its own snapshot."""
        snap = next(s for s in self.snapshots if s.snapshot_id == req.snapshot_id)
        amount = -snap.amount - sum(o.amount for o in req.tx.outputs if o.type == kernel.OUTPUT_SCRIPT
                                    and self.grants[o.keys[0]].receivers == (FEE_USER_ID,))
        refund_id = unique_object_id(req.request_id, "WITHDRAWAL-REFUND")
        tx_hash = blake3.blake3(refund_id.encode()).hexdigest()
        self._new_utxo(tx_hash, 0, req.asset_id, amount, (req.user_id,), 1, (), b"", now)
        self._snapshot(req.user_id, "", tx_hash, req.asset_id, amount, f"WITHDRAWAL_FAILED:{req.request_id}".encode(),
                       refund_id, now)
        req.withdrawal_hash = "failed"
        req.withdrawal_due = 0

    def request(self, user_id: str, id_or_hash: str) -> TxRequest:
        with self.lock:
            self._advance()
            rid = self.requests_by_hash.get(id_or_hash, id_or_hash)
            req = self.requests.get(rid)
            if req is None or req.user_id != user_id:
                raise SimError(404, {"request_id": id_or_hash})
            return req

    def request_json(self, req: TxRequest) -> dict[str, Any]:
        with self.lock:
            receivers: list[dict[str, Any]] = []
            for o in req.tx.outputs:
                if o.type == kernel.OUTPUT_WITHDRAWAL_SUBMIT:
                    w = o.withdrawal
                    assert w is not None, "a withdrawal output without an address is refused on submit"
                    receivers.append({"members": [], "members_hash": "", "threshold": 0, "destination": w.address,
                                      "tag": w.tag,
                                      "withdrawal_hash": "" if req.withdrawal_hash == "failed" else req.withdrawal_hash})
                else:
                    g = self.grants.get(o.keys[0])
                    members = list(g.receivers) if g else []
                    receivers.append({"members": members, "members_hash": hash_members(members) if members else "",
                                      "threshold": o.script[2] if o.script else 0, "destination": "", "tag": "",
                                      "withdrawal_hash": ""})
            spent = req.state == "spent"
            return {
                "type": "kernel_transaction_request", "request_id": req.request_id, "transaction_hash": req.hash,
                "asset": req.tx.asset.hex(), "asset_id": req.asset_id, "kernel_asset_id": req.tx.asset.hex(),
                "amount": format_units(sum(o.amount for o in req.tx.outputs)), "extra": req.tx.extra.hex(),
                "user_id": req.user_id, "state": req.state,
                "raw_transaction": (req.signed_raw or req.raw).hex(), "views": [v.hex() for v in req.views],
                "receivers": receivers, "senders": [req.user_id], "senders_hash": hash_members([req.user_id]),
                "senders_threshold": 1, "signers": [], "revoked_by": "",
                "created_at": rfc3339nano(req.created_at), "updated_at": rfc3339nano(req.updated_at or req.created_at),
                "snapshot_id": req.snapshot_id, "snapshot_hash": hashlib.sha256(req.snapshot_id.encode()).hexdigest() if spent else "",
                "snapshot_at": rfc3339nano(req.snapshot_at) if spent else "",
            }

    # --- the external chain (mixmaker.sim.chain) -----------------------------------------------

    def attach_chain(self) -> None:
        """From now on withdrawals wait for the chain's word (`chain_withdrawal_sent`/`_failed`)."""
        with self.lock:
            if not self.external_chain:
                self.external_chain = True
                self.version += 1

    def chain_withdrawals(self) -> list[dict[str, Any]]:
        """Withdrawals final in the kernel that the chain has not taken yet (no hash, not failed)."""
        with self.lock:
            self._advance()
            out = []
            for req in self.requests.values():
                if not req.withdrawal_due or req.withdrawal_hash:
                    continue
                o = next(o for o in req.tx.outputs if o.type == kernel.OUTPUT_WITHDRAWAL_SUBMIT)
                assert o.withdrawal is not None
                asset = self.assets[req.asset_id]
                out.append({"request_id": req.request_id, "asset_id": asset.asset_id, "network": self.network_of(asset),
                            "symbol": asset.symbol, "amount": format_units(o.amount), "destination": o.withdrawal.address,
                            "tag": o.withdrawal.tag, "created_at": req.snapshot_at})
            return out

    def _chain_request(self, request_id: str) -> TxRequest:
        req = self.requests.get(request_id)
        if req is None or not (req.withdrawal_due or req.withdrawal_hash):
            raise SimError(404, {"request_id": request_id, "reason": "no such withdrawal"})
        return req

    def chain_withdrawal_sent(self, request_id: str, withdrawal_hash: str) -> None:
        """The withdrawal is on the chain under `withdrawal_hash` (idempotent)."""
        with self.lock:
            req = self._chain_request(request_id)
            if req.withdrawal_hash == withdrawal_hash:
                return
            if req.withdrawal_hash:
                raise SimError(10002, {"request_id": request_id, "reason": f"already {req.withdrawal_hash}"})
            self._withdrawal_sent(req, withdrawal_hash)

    def chain_withdrawal_failed(self, request_id: str) -> None:
        """The chain refused the withdrawal: the amount comes back (idempotent)."""
        with self.lock:
            req = self._chain_request(request_id)
            if req.withdrawal_hash == "failed":
                return
            if req.withdrawal_hash:
                raise SimError(10002, {"request_id": request_id, "reason": f"already sent as {req.withdrawal_hash}"})
            self._fail_withdrawal(req, self.clock.now_ns())

    def chain_asset(self, network: str, symbol: str) -> SimAsset | None:
        """The Mixin asset of token `symbol` on `network`, if Mixin has it."""
        return next((a for a in self.assets.values() if a.symbol == symbol and self.network_of(a) == network), None)

    def owns_destination(self, network: str, destination: str, tag: str) -> bool:
        with self.lock:
            owner = self._entry_owner.get((destination, tag))
            return owner is not None and self.network_of(self.asset(owner[1])) == network

    def chain_deposit(self, *, network: str, symbol: str, destination: str, tag: str, amount: int, deposit_hash: str,
                      deposit_index: int = 0, sender: str = "", confirmations: int, required: int,
                      echo: bool = False) -> ChainDeposit:
        """The chain reports a transfer to one of our deposit entries with `confirmations` so far.
        Pending below `required`; at `required` one output and one snapshot with `deposit`,
        however many times it is reported. `echo`: listings return its snapshot twice."""
        with self.lock:
            owner = self._entry_owner.get((destination, tag))
            if owner is None or not self.owns_destination(network, destination, tag):
                raise SimError(404, {"destination": destination, "tag": tag, "reason": f"not a deposit entry on {network}"})
            asset = self.chain_asset(network, symbol)
            if asset is None:
                raise SimError(10002, {"network": network, "symbol": symbol, "reason": "no such asset on Mixin"})
            if amount <= 0:
                raise SimError(10002, {"field": "amount"})
            now = self.clock.now_ns()
            key = f"{deposit_hash}:{deposit_index}"
            dep = self.chain_deposits.get(key)
            if dep is None:
                dep = ChainDeposit(deposit_hash, deposit_index, owner[0], asset.asset_id, amount, destination, tag,
                                   sender or "chain-sender", 0, required, now, now)
                self.chain_deposits[key] = dep
            elif (dep.asset_id, dep.amount, dep.destination, dep.tag) != (asset.asset_id, amount, destination, tag):
                raise SimError(10002, {"deposit_hash": deposit_hash, "reason": "reported again with other values"})
            if confirmations > dep.confirmations:
                dep.confirmations, dep.updated_at = confirmations, now
            if dep.confirmations >= dep.required and not dep.snapshot_id:
                tx_hash = blake3.blake3(f"deposit:{key}".encode()).hexdigest()
                self._new_utxo(tx_hash, 0, dep.asset_id, dep.amount, (dep.user_id,), 1, (), b"", now)
                snap = self._snapshot(dep.user_id, "", tx_hash, dep.asset_id, dep.amount, b"", "", now, deposit={
                    "deposit_hash": dep.deposit_hash, "deposit_index": dep.deposit_index, "sender": dep.sender,
                    "destination": dep.destination, "tag": dep.tag})
                dep.snapshot_id, dep.updated_at = snap.snapshot_id, now
            if echo and dep.snapshot_id and dep.snapshot_id not in self.echoes:
                self.echoes.add(dep.snapshot_id)
            self.version += 1
            return dep

    def pending_deposits(self, user_id: str, *, asset: str = "", destination: str = "", tag: str = "",
                         limit: int = PAGE_LIMIT) -> list[ChainDeposit]:
        """`GET /safe/deposits`: deposits to the user's entries still waiting for confirmations."""
        with self.lock:
            rows = [d for d in self.chain_deposits.values() if d.user_id == user_id and not d.snapshot_id
                    and (not asset or d.asset_id == asset) and (not destination or d.destination == destination)
                    and (not tag or d.tag == tag)]
            return sorted(rows, key=lambda d: d.created_at)[:limit]
