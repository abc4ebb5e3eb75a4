"""The funds layer's own snapshots, for intake (`mixmaker.users.intake.OwnDeposits`): which
snapshots of the bot's wallet are moves of ours, and their booking, in intake's transaction.

- A deposit whose `deposit.deposit_hash` is the chain hash of one of our exchange withdrawals:
  the arrival of that move (matched on the hash, never on the amount).
- A failed Mixin withdrawal coming back (memo `WITHDRAWAL_FAILED:<request id>`, the simulator's
  reading: Mixin documents no failure signal): the move is reversed, and retried when allowed.
- A payment from one of the operator's `fee_payers`: it funds `bot:fees`, the float that pays
  network fees charged in another asset than the one moved.
- Outgoing: the separate fee transaction of a withdrawal (its request id is not the payment's).

A deposit to our Mixin entry that may be one of our withdrawals whose hash we do not know yet
(sent, no hash) is not classified now: `DepositNotYetKnown` keeps its page for a later poll (the
confirmation worker learns the hash first), at most `defer_s` after the deposit; after that it is
left to intake (an unknown deposit, alerted).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Flow
from mixmaker.funds.addresses import AddressBook, AddressSide
from mixmaker.funds.assets import AssetMap
from mixmaker.funds.errors import FundsError
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.funds.moves import NOT_BOOKED, Direction, Move, MoveBook, MoveEvent, MoveState
from mixmaker.funds.outcomes import Outcomes
from mixmaker.mixin.models import Snapshot
from mixmaker.store.base import Transaction

FAILED_PREFIX = b"WITHDRAWAL_FAILED:"


class DepositNotYetKnown(FundsError):
    """A deposit that may be one of our moves whose hash is not known yet: ask again later."""


class FundsSnapshots:
    def __init__(self, ledger: Ledger, assets: AssetMap, moves: MoveBook, outcomes: Outcomes, addresses: AddressBook,
                 *, fee_payers: frozenset[str] = frozenset(), defer_s: float = 600.0,
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self.ledger, self.assets, self.moves, self.outcomes, self.addresses = ledger, assets, moves, outcomes, addresses
        self.fee_payers = frozenset(fee_payers)
        self.defer_s = defer_s
        self.now_ns = now_ns

    # --- the intake seam ------------------------------------------------------------------------

    def matches(self, tx: Transaction, s: Snapshot) -> bool:
        return self._which(tx, s) is not None

    def book(self, tx: Transaction, s: Snapshot) -> None:
        found = self._which(tx, s)
        if found is None:
            raise FundsError(f"snapshot {s.snapshot_id} is not one of the funds layer's")
        kind, m = found
        spec = self.assets.by_mixin_id(s.asset_id)
        assert spec is not None
        units = spec.from_mixin(s.units)
        if kind == "arrival":
            assert m is not None
            self.outcomes.arrived(tx, m.move_id, units, f"deposit snapshot {s.snapshot_id} (hash {m.tx_hash})")
        elif kind == "returned":
            assert m is not None
            self._book_fee_if_known(tx, m)
            self.outcomes.failed(tx, m.move_id, MoveEvent.REVERSED, f"Mixin returned the withdrawal (snapshot "
                                 f"{s.snapshot_id})", back={m.asset: units})
        else:
            self.ledger.post(tx, tx_key(Cause.PAYMENT, s.snapshot_id),
                             acc.inflow(Flow.PAYMENT, spec.symbol, units, acc.WALLET, acc.BOT_FEES), ref="fee-float",
                             detail={"snapshot": s.snapshot_id, "payer": s.opponent_id})

    def outgoing(self, tx: Transaction, s: Snapshot) -> bool:
        """Is this outgoing snapshot one of ours that `mixin_payments` does not name (the separate
        fee transaction of a move's withdrawal)? Its money is booked with the move."""
        return self.moves.by_fee_ref(tx, s.request_id) is not None

    # --- matching -------------------------------------------------------------------------------

    def _which(self, tx: Transaction, s: Snapshot) -> tuple[str, Move | None] | None:
        if s.units <= 0:
            return None
        spec = self.assets.by_mixin_id(s.asset_id)
        if spec is None:
            return None
        if s.deposit is not None:
            m = self.moves.by_hash(tx, Direction.TO_MIXIN, str(s.deposit.get("deposit_hash") or ""))
            if m is not None and m.asset == spec.symbol and m.state is not MoveState.FAILED:
                return "arrival", m
            if m is None:
                self._defer_if_ours(tx, s, spec.symbol)
            return None
        if s.memo.startswith(FAILED_PREFIX):
            m = self.moves.by_source_ref(tx, s.memo[len(FAILED_PREFIX):].decode(errors="replace"))
            if (m is not None and m.direction is Direction.TO_EXCHANGE and m.asset == spec.symbol
                    and m.state not in (MoveState.ARRIVED, MoveState.FAILED)):
                return "returned", m
            return None
        if s.opponent_id and s.opponent_id in self.fee_payers:
            return "fee_float", None
        return None

    def _defer_if_ours(self, tx: Transaction, s: Snapshot, symbol: str) -> None:
        dest = str((s.deposit or {}).get("destination") or "")
        tag = str((s.deposit or {}).get("tag") or "")
        if self.addresses.owns(tx, AddressSide.MIXIN, dest, tag) is None:
            return
        if self.now_ns() - s.created_at_ns > self.defer_s * 1e9:
            return
        waiting = [m for m in self.moves.in_flight(tx) if m.direction is Direction.TO_MIXIN and m.asset == symbol
                   and not m.tx_hash and (m.send_started_ns or m.sent_ns)]
        if waiting:
            raise DepositNotYetKnown(f"deposit {s.snapshot_id} ({(s.deposit or {}).get('deposit_hash')}) may be move "
                                     f"{waiting[0].move_id}, whose hash is not known yet")

    def _book_fee_if_known(self, tx: Transaction, m: Move) -> None:
        """A withdrawal coming back before its SENT was recorded (a crash in between): its fee,
        paid all the same, is booked from what Payments planned."""
        if m.fee_units != NOT_BOOKED:
            return
        rows = tx.query("SELECT fee FROM mixin_payments WHERE request_id = ?", (m.source_ref,))
        if not rows or not rows[0][0]:
            return
        asset_id, units = json.loads(rows[0][0])
        spec = self.assets.by_mixin_id(asset_id)
        if spec is not None:
            self.moves.book_fee(tx, m.move_id, spec.symbol, spec.from_mixin(int(units)))
