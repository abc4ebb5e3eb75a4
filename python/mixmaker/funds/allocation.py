"""Moving a user order's funds between the bot's Mixin wallet and a pool's exchange account.

The `Allocator` protocol is the seam between the user layer (which decides WHEN an order's funds
go to the exchange and come back) and the funds layer (which knows HOW: issue 15's
`SimDirectAllocator` stand-in, issue 16's real moves through the chain).

An allocator moves HOLDINGS only (wallet -> transit:<move id> -> exchange:<account> and back, each
step a ledger transaction keyed by its move id); whose the money is (the user order's claim, the
pool's claim) is the user layer's business. Every call is idempotent by `key`: calling again with
the same key reports the state of the same move and never starts a second one, so the caller may
call after a crash, after a timeout, or on every tick until it is DONE or FAILED.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import aiohttp

from mixmaker.funds.accounts import WALLET, Flow, exchange, transfer, transit
from mixmaker.funds.assets import AssetMap, AssetSpec
from mixmaker.funds.errors import FundsError
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.mixin.errors import MixinError
from mixmaker.mixin.models import Snapshot
from mixmaker.mixin.payments import PaymentFailedError, Payments
from mixmaker.money import format_units
from mixmaker.orders.errors import OrderRejectedError, VenueUnavailableError
from mixmaker.store import Store
from mixmaker.store.base import Row, Transaction

log = logging.getLogger("mixmaker.funds.allocation")


class AllocationState(enum.Enum):
    PENDING = "pending"  # on its way (or not started yet): call again later with the same key
    DONE = "done"  # the amounts are where they were sent, and the ledger says so
    FAILED = "failed"  # the move did not happen for good; the holdings are back where they started


class Allocator(Protocol):
    async def to_exchange(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        """Moves `amounts` (ledger units per asset symbol) from the Mixin wallet to the exchange
        account of `pool_id`. `key` is the user order id for an order's first funding and
        `<order id>.<n>` for its n-th top-up (an ADD to an active order)."""
        ...

    async def to_mixin(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        """Moves `amounts` back from the pool's exchange account to the Mixin wallet. `key` is the
        user order id (an order comes back once, when it is stopped)."""
        ...


# --- issue 15's stand-in ---------------------------------------------------------------------------

MOVE_MIGRATIONS = [
    """CREATE TABLE fund_moves (
        move_id TEXT PRIMARY KEY, move_key TEXT NOT NULL, direction TEXT NOT NULL, pool_id TEXT NOT NULL,
        venue_account TEXT NOT NULL, asset TEXT NOT NULL, units BIGINT NOT NULL, state TEXT NOT NULL,
        error TEXT NOT NULL, updated_ns BIGINT NOT NULL)""",
    "CREATE INDEX fund_moves_by_key ON fund_moves (move_key, direction)",
]

MEMO_PREFIX = b"mixmaker-move:"


class Direction(enum.Enum):
    IN = "in"  # Mixin wallet -> exchange account
    OUT = "out"  # exchange account -> Mixin wallet
    UNDO = "undo"  # an IN whose other assets failed, brought back (OUT's steps)


class MoveState(enum.Enum):
    NEW = "new"  # recorded; nothing sent yet
    SENT = "sent"  # left its source (MOVE_SENT booked: in transit)
    ARRIVED = "arrived"  # at its destination (MOVE_ARRIVED booked)
    FAILED = "failed"  # refused for good before anything left


class MoveError(FundsError):
    """A move asked with other amounts than the same key's first call (one cause, two effects)."""


@dataclass(frozen=True, slots=True)
class SimVenueAccount:
    """One exchange account on `mixmaker.sim.exchange`: the connector's venue (withdrawals, the
    deposit history), the simulator's REST root (its operator deposit call) and the simulator's
    own name for the account."""

    venue: Any  # mixmaker.connectors.ccxt_account.CcxtVenue
    rest_url: str
    sim_account: str


def move_id(key: str, direction: Direction, asset: str) -> str:
    """One move per asset: `<key>.<in|out|undo>.<asset>`."""
    return f"{key}.{direction.value}.{asset}"


def move_memo(mid: str) -> bytes:
    return MEMO_PREFIX + mid.encode()


def _deposit_tag(mid: str) -> str:
    # The simulator's deposit call has no reference field; its free-text network carries ours,
    # so a repeated call finds the deposit instead of crediting twice.
    return "mm-" + hashlib.sha256(mid.encode()).hexdigest()[:24]


def _withdraw_id(mid: str) -> str:
    return "mm" + hashlib.sha256(mid.encode()).hexdigest()[:30]


class SimDirectAllocator:
    """Issue 15's stand-in for real moves (issue 16 replaces it with the simulated chain):

    - to the exchange: a real `Payments.transfer` from the bot to the exchange simulator's custody
      user on the Mixin simulator (the bot's wallet really decreases), then the exchange
      simulator's own deposit call (`POST /sim/deposit`, named as such) credits the account;
    - back: the exchange's withdraw call (idempotent by `withdrawOrderId`), then the custody user
      pays the bot on the Mixin simulator (`POST /_sim/transfers`, memo `mixmaker-move:<move id>`).
      The custody user must hold a float of every asset (an exchange's hot wallet does): what a
      pool gained in an asset is more than was sent in.

    Ledger, per asset and move id: MOVE_SENT (source -> `transit:<move id>`) once the money left,
    MOVE_ARRIVED (transit -> destination) once it is there. Each step is recorded in
    `fund_moves` before the next external call, and every external call is idempotent (a cause, a
    withdraw id, a deposit tag, a memo looked up first), so calling again after a crash resumes.

    Intake must not take the custody user's transfer back for a user's payment: it asks
    `matches(tx, snapshot)` and `book(tx, snapshot)` (the `OwnDeposits` seam); `book` posts the same
    MOVE_ARRIVED the allocator posts itself, so whichever comes first counts and the other is a no-op.
    """

    def __init__(self, store: Store, ledger: Ledger, assets: AssetMap, payments: Payments, *, mixin_sim_url: str,
                 custody_user_id: str, venues: Mapping[str, SimVenueAccount],
                 crash_at: Callable[[str, str], None] | None = None) -> None:
        """`crash_at(step, move_id)` lets a test stop the process right after an external call
        and before it is recorded: steps "paid", "deposited", "withdrawn", "custody_paid"."""
        self.store, self.ledger, self.assets, self.payments = store, ledger, assets, payments
        self._crash_at = crash_at or (lambda step, mid: None)
        self.mixin_sim_url = mixin_sim_url.rstrip("/")
        self.custody = custody_user_id
        self.venues = dict(venues)
        store.migrate("fund_moves", MOVE_MIGRATIONS)

    # --- the Allocator protocol -------------------------------------------------------------------

    async def to_exchange(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        ids = self._record(key, Direction.IN, pool_id, amounts)
        for mid in ids:
            await self._advance(mid)
        states = [self._state(mid) for mid in ids]
        if all(s is MoveState.ARRIVED for s in states):
            return AllocationState.DONE
        if any(s is MoveState.FAILED for s in states) and all(s in (MoveState.FAILED, MoveState.ARRIVED) for s in states):
            # Nothing more will arrive: bring back what did, then the move has failed as a whole.
            back = {self._row(m)[5]: self._row(m)[6] for m, s in zip(ids, states, strict=True) if s is MoveState.ARRIVED}
            if back:
                undo = self._record(key, Direction.UNDO, pool_id, back)
                for mid in undo:
                    await self._advance(mid)
                if any(self._state(m) is not MoveState.ARRIVED for m in undo):
                    return AllocationState.PENDING
            return AllocationState.FAILED
        return AllocationState.PENDING

    async def to_mixin(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        ids = self._record(key, Direction.OUT, pool_id, amounts)
        for mid in ids:
            await self._advance(mid)
        states = [self._state(mid) for mid in ids]
        if all(s is MoveState.ARRIVED for s in states):
            return AllocationState.DONE
        if any(s is MoveState.FAILED for s in states):
            return AllocationState.FAILED
        return AllocationState.PENDING

    # --- the intake seam (OwnDeposits) ------------------------------------------------------------

    def matches(self, tx: Transaction, s: Snapshot) -> bool:
        """A payment from the custody user whose memo names one of our moves back."""
        return self._arrival_of(tx, s) is not None

    def book(self, tx: Transaction, s: Snapshot) -> None:
        row = self._arrival_of(tx, s)
        if row is None:
            raise MoveError(f"snapshot {s.snapshot_id} is not the arrival of one of our moves")
        mid, asset, units = row
        self._post_arrived(tx, mid, asset, units, WALLET)
        tx.execute("UPDATE fund_moves SET state = ?, updated_ns = ? WHERE move_id = ?",
                   (MoveState.ARRIVED.value, time.time_ns(), mid))

    def _arrival_of(self, tx: Transaction, s: Snapshot) -> tuple[str, str, int] | None:
        if s.units <= 0 or s.opponent_id != self.custody or not s.memo.startswith(MEMO_PREFIX):
            return None
        mid = s.memo[len(MEMO_PREFIX):].decode(errors="replace")
        rows = tx.query("SELECT direction, asset, units, state FROM fund_moves WHERE move_id = ?", (mid,))
        if not rows or rows[0][0] == Direction.IN.value or rows[0][3] == MoveState.NEW.value:
            return None
        spec = self.assets.symbol(rows[0][1])
        if spec.mixin_asset_id != s.asset_id.lower() or spec.from_mixin(s.units) != rows[0][2]:
            return None  # not what we sent: intake treats it as it would any payment
        return mid, rows[0][1], rows[0][2]

    # --- steps --------------------------------------------------------------------------------------

    def _record(self, key: str, direction: Direction, pool_id: str, amounts: Mapping[str, int]) -> list[str]:
        venue_account = pool_id.partition(":")[0]
        if venue_account not in self.venues:
            raise MoveError(f"no exchange account {venue_account!r} for pool {pool_id}")
        ids = []
        with self.store.transaction() as tx:
            for asset, units in sorted(amounts.items()):
                if units <= 0:
                    continue
                self._spec(asset, venue_account)
                mid = move_id(key, direction, asset)
                tx.execute("INSERT INTO fund_moves (move_id, move_key, direction, pool_id, venue_account, asset, units, "
                           "state, error, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?) ON CONFLICT DO NOTHING",
                           (mid, key, direction.value, pool_id, venue_account, asset, units, MoveState.NEW.value,
                            time.time_ns()))
                have = tx.query("SELECT pool_id, units FROM fund_moves WHERE move_id = ?", (mid,))[0]
                if tuple(have) != (pool_id, units):
                    raise MoveError(f"move {mid} was asked for {have[1]} units to {have[0]}, now {units} to {pool_id}")
                ids.append(mid)
        return ids

    def _row(self, mid: str) -> Row:
        return self.store.query("SELECT move_id, move_key, direction, pool_id, venue_account, asset, units, state "
                                "FROM fund_moves WHERE move_id = ?", (mid,))[0]

    def _state(self, mid: str) -> MoveState:
        return MoveState(self._row(mid)[7])

    def _set(self, tx: Transaction, mid: str, state: MoveState, error: str = "") -> None:
        tx.execute("UPDATE fund_moves SET state = ?, error = ?, updated_ns = ? WHERE move_id = ?",
                   (state.value, error, time.time_ns(), mid))

    def _spec(self, asset: str, venue_account: str) -> AssetSpec:
        spec = self.assets.symbol(asset)
        if venue_account not in spec.venues:
            raise MoveError(f"asset {asset} is not configured on {venue_account}")
        return spec

    async def _advance(self, mid: str) -> None:
        _, _, direction, _, venue_account, asset, units, state = self._row(mid)
        spec = self._spec(asset, venue_account)
        try:
            if Direction(direction) is Direction.IN:
                if MoveState(state) is MoveState.NEW:
                    await self._pay_custody(mid, spec, units)
                if self._state(mid) is MoveState.SENT:
                    await self._credit_exchange(mid, spec, venue_account, units)
            else:
                if MoveState(state) is MoveState.NEW:
                    await self._withdraw(mid, spec, venue_account, units)
                if self._state(mid) is MoveState.SENT:
                    await self._custody_pays_back(mid, spec, units)
        except (MixinError, VenueUnavailableError, aiohttp.ClientError, TimeoutError) as e:
            log.warning("move %s: %s (will ask again)", mid, e)  # PENDING: the next call resumes

    async def _pay_custody(self, mid: str, spec: AssetSpec, units: int) -> None:
        try:
            await self.payments.transfer(f"move:{mid}", spec.mixin_asset_id, self._mixin_amount(spec, units),
                                         self.custody, move_memo(mid))
        except PaymentFailedError as e:
            with self.store.transaction() as tx:
                self._set(tx, mid, MoveState.FAILED, str(e))
            return
        self._crash_at("paid", mid)
        with self.store.transaction() as tx:
            self.ledger.post(tx, tx_key(Cause.MOVE_SENT, mid), transfer(Flow.MOVE, spec.symbol, units, WALLET, transit(mid)),
                             ref=mid, detail={"to": "exchange custody", "custody": self.custody})
            self._set(tx, mid, MoveState.SENT)

    async def _credit_exchange(self, mid: str, spec: AssetSpec, venue_account: str, units: int) -> None:
        acct = self.venues[venue_account]
        currency = spec.venues[venue_account].currency
        tag = _deposit_tag(mid)
        if not await self._deposited(acct, currency, tag):
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{acct.rest_url}/sim/deposit", params={
                        "account": acct.sim_account, "coin": currency, "amount": self._mixin_amount(spec, units),
                        "network": tag}) as r:
                    if r.status != 200:
                        raise VenueUnavailableError(f"the exchange simulator's deposit call answered {r.status}: "
                                                    f"{await r.text()}")
        self._crash_at("deposited", mid)
        with self.store.transaction() as tx:
            self._post_arrived(tx, mid, spec.symbol, units, exchange(venue_account))
            self._set(tx, mid, MoveState.ARRIVED)

    @staticmethod
    async def _deposited(acct: SimVenueAccount, currency: str, tag: str) -> bool:
        rows = await acct.venue._call(lambda: acct.venue.exchange.fetch_deposits(currency))
        return any((r.get("info") or {}).get("network") == tag for r in rows)

    async def _withdraw(self, mid: str, spec: AssetSpec, venue_account: str, units: int) -> None:
        acct = self.venues[venue_account]
        try:
            await acct.venue.withdraw(_withdraw_id(mid), spec.venues[venue_account].currency,
                                      Decimal(self._mixin_amount(spec, units)), f"mixin:{self.custody}")
        except OrderRejectedError as e:
            with self.store.transaction() as tx:
                self._set(tx, mid, MoveState.FAILED, str(e))
            return
        self._crash_at("withdrawn", mid)
        with self.store.transaction() as tx:
            self.ledger.post(tx, tx_key(Cause.MOVE_SENT, mid),
                             transfer(Flow.MOVE, spec.symbol, units, exchange(venue_account), transit(mid)),
                             ref=mid, detail={"withdraw_id": _withdraw_id(mid), "to": "exchange custody on Mixin"})
            self._set(tx, mid, MoveState.SENT)

    async def _custody_pays_back(self, mid: str, spec: AssetSpec, units: int) -> None:
        memo = move_memo(mid)
        # Mixin takes an opponent or an asset filter, not both; the memo names the move.
        found = [s for s in await self.payments.client.snapshots(opponent=self.custody, order="DESC", limit=500)
                 if s.memo == memo and s.units > 0]
        if not found:
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{self.mixin_sim_url}/_sim/transfers", json={
                        "from": self.custody, "to": self.payments.app_id, "asset_id": spec.mixin_asset_id,
                        "amount": self._mixin_amount(spec, units), "memo_hex": memo.hex()}) as r:
                    body = await r.json(content_type=None)
                    if r.status != 200 or "data" not in body:
                        raise VenueUnavailableError(f"the Mixin simulator's transfer call answered {r.status}: {body}")
        self._crash_at("custody_paid", mid)
        with self.store.transaction() as tx:
            self._post_arrived(tx, mid, spec.symbol, units, WALLET)
            self._set(tx, mid, MoveState.ARRIVED)

    def _post_arrived(self, tx: Transaction, mid: str, asset: str, units: int, dest: Any) -> None:
        self.ledger.post(tx, tx_key(Cause.MOVE_ARRIVED, mid), transfer(Flow.MOVE, asset, units, transit(mid), dest),
                         ref=mid)

    @staticmethod
    def _mixin_amount(spec: AssetSpec, units: int) -> str:
        whole, rest = spec.to_mixin(units)
        if rest:
            raise MoveError(f"{units} units of {spec.symbol} are finer than Mixin's 8 decimals")
        return format_units(whole, 8, trim=True)
