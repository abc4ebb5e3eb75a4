"""The Mixin simulator's state as a JSON document, and back.

Persisted: users (keys, sessions), assets, every output and snapshot, ghost-key grants,
transaction requests (raw transactions, states, withdrawal hashes and due times), requests
awaiting kernel finality, deposit entries, chain deposits (pending and credited), echoes, the
failing-address switch, counters, the id generator's state and the clock. Not persisted: the
replay guard of token ids (`seen_jti`; tokens carry their own expiry) and the configuration
(`withdrawal_delay_s`, `finality_delay_s`: the restarted process's own).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mixmaker.mixin import kernel
from mixmaker.sim.mixin.state import ChainDeposit, GhostGrant, SimAsset, SimState, SimUser, Snapshot, TxRequest, Utxo

FORMAT = 1


def _hex(items: Any) -> list[str]:
    return [b.hex() for b in items]


def asdict(obj: Any) -> dict[str, Any]:
    """A dataclass's fields, one level deep: its dicts are copied, its other values are immutable."""
    return {f.name: dict(v) if isinstance(v, dict) else v
            for f in dataclasses.fields(obj) for v in (getattr(obj, f.name),)}


def dump(state: SimState) -> dict[str, Any]:
    with state.lock:
        return {
            "format": FORMAT,
            "users": [{"user_id": u.user_id, "full_name": u.full_name, "view_private": u.view_private.hex(),
                       "spend_public": u.spend_public.hex(), "session_keys": {k: v.hex() for k, v in u.session_keys.items()},
                       "safe_registered": u.safe_registered, "is_app": u.is_app} for u in state.users.values()],
            "assets": [asdict(a) for a in state.assets.values()],
            "utxos": [{**asdict(u), "mask": u.mask.hex(), "keys": _hex(u.keys), "extra": u.extra.hex()}
                      for u in state.utxos.values()],
            "snapshots": [{**asdict(s), "memo": s.memo.hex()} for s in state.snapshots],
            "grants": {k.hex(): {"receivers": list(g.receivers), "index": g.index, "mask": g.mask.hex()}
                       for k, g in state.grants.items()},
            "requests": [{"request_id": r.request_id, "user_id": r.user_id, "raw": r.raw.hex(), "asset_id": r.asset_id,
                          "views": _hex(r.views), "created_at": r.created_at, "state": r.state, "updated_at": r.updated_at,
                          "signed_raw": r.signed_raw.hex(), "snapshot_id": r.snapshot_id, "snapshot_at": r.snapshot_at,
                          "withdrawal_hash": r.withdrawal_hash, "withdrawal_due": r.withdrawal_due,
                          "withdrawal_fails": r.withdrawal_fails} for r in state.requests.values()],
            "unfinal": [{"due": due, "user_id": user_id, "request_id": req.request_id, "raw": raw.hex()}
                        for due, user_id, req, _, raw in state._unfinal],
            "deposit_entries": list(state.deposit_entries.values()),
            "chain_deposits": [asdict(d) for d in state.chain_deposits.values()],
            "echoes": sorted(state.echoes),
            "failing_addresses": sorted(state.failing_addresses),
            "external_chain": state.external_chain,
            "sequence": state._sequence,
            "snap_seq": state._snap_seq,
            "rng": _rng_state(state.rng.getstate()),
            "clock": {"offset_ns": state.clock._offset_ns, "last": state.clock._last},
        }


def load(state: SimState, doc: dict[str, Any]) -> SimState:
    """Fills a freshly built `state` (its configuration already set) from `dump`'s document."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"Mixin simulator state format {doc.get('format')!r}, expected {FORMAT}")
    with state.lock:
        state.users.clear()
        state.sessions.clear()
        for u in doc["users"]:
            user = SimUser(u["user_id"], u["full_name"], bytes.fromhex(u["view_private"]), bytes.fromhex(u["spend_public"]),
                           {k: bytes.fromhex(v) for k, v in u["session_keys"].items()}, u["safe_registered"], u["is_app"])
            state.users[user.user_id] = user
            for sid in user.session_keys:
                state.sessions[sid] = user.user_id
        state.assets.clear()
        state.assets_by_kernel_id.clear()
        for a in doc["assets"]:
            state.add_asset(SimAsset(**a))
        state.utxos = {}
        for u in doc["utxos"]:
            utxo = Utxo(**{**u, "mask": bytes.fromhex(u["mask"]), "keys": tuple(bytes.fromhex(k) for k in u["keys"]),
                           "receivers": tuple(u["receivers"]), "senders": tuple(u["senders"]),
                           "extra": bytes.fromhex(u["extra"])})
            state.utxos[(utxo.transaction_hash, utxo.output_index)] = utxo
        state.snapshots = [Snapshot(**{**s, "memo": bytes.fromhex(s["memo"])}) for s in doc["snapshots"]]
        state.grants = {bytes.fromhex(k): GhostGrant(tuple(g["receivers"]), g["index"], bytes.fromhex(g["mask"]))
                        for k, g in doc["grants"].items()}
        state.requests, state.requests_by_hash = {}, {}
        for r in doc["requests"]:
            raw = bytes.fromhex(r["raw"])
            req = TxRequest(r["request_id"], r["user_id"], raw, kernel.decode(raw), r["asset_id"],
                            [bytes.fromhex(v) for v in r["views"]], r["created_at"], r["state"], r["updated_at"],
                            bytes.fromhex(r["signed_raw"]), r["snapshot_id"], r["snapshot_at"], r["withdrawal_hash"],
                            r["withdrawal_due"], r["withdrawal_fails"])
            state.requests[req.request_id] = req
            state.requests_by_hash[req.hash] = req.request_id
        state._unfinal = []
        for f in doc["unfinal"]:
            raw = bytes.fromhex(f["raw"])
            state._unfinal.append((f["due"], f["user_id"], state.requests[f["request_id"]], kernel.decode(raw), raw))
        state.deposit_entries, state._entry_owner = {}, {}
        for e in doc["deposit_entries"]:
            key = (e["members"][0], e["chain_id"])
            state.deposit_entries[key] = e
            state._entry_owner[(e["destination"], e["tag"])] = key
        state.chain_deposits = {}
        for d in doc["chain_deposits"]:
            dep = ChainDeposit(**d)
            state.chain_deposits[dep.key] = dep
        state.echoes = set(doc["echoes"])
        state.failing_addresses = set(doc["failing_addresses"])
        state.external_chain = doc["external_chain"]
        state._sequence, state._snap_seq = doc["sequence"], doc["snap_seq"]
        state.rng.setstate(_rng_tuple(doc["rng"]))
        state.clock._offset_ns = doc["clock"]["offset_ns"]
        state.clock._last = doc["clock"]["last"]
        state.version += 1
        return state


def _rng_state(s: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = s
    return [version, list(internal), gauss]


def _rng_tuple(s: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = s
    return (version, tuple(internal), gauss)
