"""The funds mover: the `Allocator` of the user layer, with real moves.

`to_exchange` / `to_mixin` record what a user order asks to move (a REQUEST per asset, idempotent
by its key) and report how far it got; `run_once` does the moving:

- batches the WAITING requests of one direction, exchange account and asset into ONE move, once
  the oldest has waited `batch_wait_s` and the batch is worth it: at least `min_units`, and a fee
  of at most `max_fee_fraction` of it (a fee in another asset, paid from `bot:fees`, is not
  weighed: no price is known here; that float must hold it). What does not qualify waits, alerted;
- plans the move (stored, booked in transit, under its deterministic id) and sends it: a Safe
  withdrawal to the exchange's deposit address (`Payments`, cause `move:<id>`), or an exchange
  withdrawal to the bot's Mixin deposit entry (client id `withdrawOrderId` derived from the id).
  The send is marked before it leaves (a process killed before the answer is recorded leaves a
  move known to maybe have left). On a venue without withdrawal client ids
  (`withdraw_client_ids = False`), after an unclear answer the withdrawal is looked for by its
  reference (address, amount, time, not claimed by another move) and adopted if exactly one
  matches, else the move stops in doubt, alerted, and is never sent again by itself;
- UTXO hygiene: before a Mixin withdrawal, an asset with `consolidate_at` unspent outputs or more
  has its oldest outputs merged into one (a payment to the bot itself, at most 255 inputs), so no
  payment needs more inputs than a transaction takes (256, `mixin.kernel.SLICE_LIMIT`);
- never plans or sends anything while a halt is active (`mixmaker.funds.halts`), nor before the
  start-up comparison let it (`ready`).

Following a move to its end is the confirmation worker's (`mixmaker.funds.confirm`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from mixmaker.funds import accounts as acc
from mixmaker.funds import alerts, halts
from mixmaker.funds.accounts import Account
from mixmaker.funds.addresses import AddressBook, AddressChangedError
from mixmaker.funds.alerts import FundsAlert
from mixmaker.funds.allocation import AllocationState
from mixmaker.funds.assets import AssetMap, AssetSpec, NetworkInfo
from mixmaker.funds.errors import FundsError
from mixmaker.funds.ledger import Ledger
from mixmaker.funds.moves import (
    NOT_BOOKED,
    Direction,
    Move,
    MoveBook,
    MoveError,
    MoveEvent,
    MoveState,
    Part,
    move_id,
    payment_cause,
    withdraw_client_id,
)
from mixmaker.funds.outcomes import Outcomes, RetryPolicy, mixin_refs
from mixmaker.funds.requests import Request, Requests, RequestState
from mixmaker.mixin.errors import LocalPaymentError, MixinError
from mixmaker.mixin.kernel import SLICE_LIMIT
from mixmaker.mixin.payments import PaymentFailedError, Payments, PaymentState
from mixmaker.mixin.utxo import InsufficientOutputsError
from mixmaker.money import MIXIN_DECIMALS, Rounding, format_units, to_units
from mixmaker.orders.errors import OrderRejectedError, VenueError
from mixmaker.store import Store
from mixmaker.store.lease import LeaseError

log = logging.getLogger("mixmaker.funds.mover")

Crash = Callable[[str, str], None]


@dataclass(frozen=True)
class MoverConfig:
    min_units: Mapping[str, int] = field(default_factory=dict)  # per asset symbol: a smaller batch waits
    max_fee_fraction: Fraction = Fraction(1, 20)  # a batch whose fee eats more waits
    batch_wait_s: float = 2.0  # a request waits this long for others to join its move
    # A batch still not worth its fee after this long: to the exchange, its requests fail (the
    # money never left Mixin: the order is returned); back to Mixin, it goes anyway if it is more
    # than the fee, and what is not is kept as dust (unclaimed:dust, on the exchange).
    fee_hold_s: float = 600.0
    consolidate_at: int = 200  # an asset with this many unspent outputs has its oldest merged
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not isinstance(self.max_fee_fraction, Fraction) or not 0 <= self.max_fee_fraction < 1:
            raise FundsError(f"max_fee_fraction must be a Fraction in [0, 1), got {self.max_fee_fraction!r}")
        if not 2 <= self.consolidate_at <= SLICE_LIMIT:
            raise FundsError(f"consolidate_at must be 2..{SLICE_LIMIT}, got {self.consolidate_at}")


@dataclass(frozen=True, slots=True)
class FeeShort:
    """A move that waits because `bot:fees` cannot pay its network fee in another asset (an ERC-20
    token's fee in ETH): what it moves, the fee it needs and what the float holds, in ledger units."""

    subject: str  # the batch (direction:account:asset) or the planned move waiting for it
    asset: str  # what the move moves
    account: str  # the exchange account
    fee_asset: str
    needed: int
    held: int  # what bot:fees can still pay (its claim less the estimates of moves not booked yet)


def order_claim(key: str) -> Account:
    """The claim an allocation key moves money for: the user order (`<order id>[.<n>|.undo]`)."""
    return acc.user_order(key.partition(".")[0])


class FundsMover:
    def __init__(self, store: Store, ledger: Ledger, assets: AssetMap, moves: MoveBook, requests: Requests,
                 outcomes: Outcomes, addresses: AddressBook, payments: Payments, venues: Mapping[str, Any],
                 config: MoverConfig | None = None, *, claim_of: Callable[[str], Account] = order_claim,
                 now_ns: Callable[[], int] = time.time_ns, crash_at: Crash | None = None) -> None:
        self.store, self.ledger, self.assets = store, ledger, assets
        self.moves, self.requests, self.outcomes, self.addresses = moves, requests, outcomes, addresses
        self.payments = payments
        self.venues = dict(venues)
        self.config = config or MoverConfig()
        self.claim_of = claim_of
        self.now_ns = now_ns
        self._crash_at = crash_at or (lambda step, ident: None)
        self.networks: dict[tuple[str, str], NetworkInfo] = {}  # (account, symbol) -> what the exchange offers
        self.ready = False  # set by the start-up comparison (mixmaker.funds.worker)
        self._chains: dict[str, str] = {}  # Mixin asset id -> its chain id
        # Moves waiting for the fee float, as of the last round (what /health and the dashboard name).
        self.fee_short: list[FeeShort] = []
        self._short_now: list[FeeShort] = []
        alerts.migrate(store)
        halts.migrate(store)

    # --- the Allocator protocol -------------------------------------------------------------------

    async def to_exchange(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        rs = self._record(key, Direction.TO_EXCHANGE, pool_id, amounts)
        states = {r.state for r in rs}
        if states <= {RequestState.DONE}:
            return AllocationState.DONE
        if RequestState.FAILED not in states or states & {RequestState.WAITING, RequestState.MOVING}:
            return AllocationState.PENDING
        # Some asset failed for good: bring back what arrived, then the allocation has failed.
        held = self.ledger.holdings_of(self.claim_of(key))
        arrived = {r.asset: min(r.units, held.get(r.asset, 0)) for r in rs if r.state is RequestState.DONE}
        arrived = {a: u for a, u in arrived.items() if u > 0}
        if not arrived:
            return AllocationState.FAILED
        undo = self._record(f"{key}.undo", Direction.TO_MIXIN, pool_id, arrived)
        if all(r.state is RequestState.DONE for r in undo):
            return AllocationState.FAILED
        return AllocationState.PENDING

    async def to_mixin(self, key: str, pool_id: str, amounts: Mapping[str, int]) -> AllocationState:
        rs = self._record(key, Direction.TO_MIXIN, pool_id, amounts)
        if all(r.state is RequestState.DONE for r in rs):
            return AllocationState.DONE
        if any(r.state is RequestState.FAILED for r in rs):
            return AllocationState.FAILED
        return AllocationState.PENDING

    def _record(self, key: str, direction: Direction, pool_id: str, amounts: Mapping[str, int]) -> list[Request]:
        venue_account = pool_id.partition(":")[0]
        if venue_account not in self.venues:
            raise MoveError(f"no exchange account {venue_account!r} for pool {pool_id}")
        with self.store.transaction() as tx:
            out = []
            for asset, units in sorted(amounts.items()):
                if units <= 0:
                    continue
                self._venue_asset(asset, venue_account)
                out.append(self.requests.record(tx, key, direction, pool_id, venue_account, asset, units,
                                                self.claim_of(key)))
        return out

    # --- moving -----------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Plans the batches that are due and sends what is planned; returns how many moves it
        planned or sent. Does nothing before `ready` or while a halt is active."""
        if not self.ready or halts.halted(self.store):
            return 0
        self._short_now = []
        try:
            return await self._plan_batches() + await self._send_planned()
        finally:
            self.fee_short = self._short_now

    async def _plan_batches(self) -> int:
        groups: dict[tuple[Direction, str, str], list[Request]] = defaultdict(list)
        for r in self.requests.waiting():
            groups[(r.direction, r.venue_account, r.asset)].append(r)
        planned = 0
        now = self.now_ns()
        for (direction, account, asset), rs in sorted(groups.items(), key=lambda g: min(r.created_ns for r in g[1])):
            if now - min(r.created_ns for r in rs) < self.config.batch_wait_s * 1e9:
                continue
            try:
                if await self._plan(direction, account, asset, rs):
                    planned += 1
            except AddressChangedError as e:
                log.warning("no move of %s to %s: %s", asset, account, e)
                return planned  # halted now: nothing more moves
            except (MixinError, VenueError, LeaseError) as e:
                log.warning("planning a move of %s on %s failed (asked again next time): %s", asset, account, e)
        return planned

    async def _plan(self, direction: Direction, account: str, asset: str, rs: list[Request]) -> bool:
        spec = self.assets.symbol(asset)
        venue = self.venues[account]
        total = sum(r.units for r in rs)
        keys = [r.part_key for r in rs]
        mid = move_id(direction, account, asset, keys)
        if direction is Direction.TO_MIXIN and not withdraw_client_ids(venue) and self._in_doubt(account, asset):
            return False  # one unreferenced withdrawal at a time: a lookup must find exactly one
        if direction is Direction.TO_EXCHANGE:
            address = await self.addresses.exchange_address(venue, account, spec)
            fee_asset, fee_est = await self._mixin_fee(spec, address.address)
            send = total - fee_est if fee_asset == asset else total
            weighed = fee_est if fee_asset == asset else 0
            source_ref, fee_ref = mixin_refs(mid, fee_asset != asset)
        else:
            address = await self.addresses.mixin_entry(self.payments.client, spec, await self._chain(spec),
                                                       spec.venues[account].network)
            fee_asset, fee_est = asset, self._exchange_fee(account, spec)
            send, weighed = total, fee_est
            source_ref, fee_ref = withdraw_client_id(mid), ""
        group = f"{direction.value}:{account}:{asset}"
        minimum = self.config.min_units.get(asset, 0) if direction is Direction.TO_EXCHANGE else 0
        worth = total >= minimum and send > 0 and weighed <= self.config.max_fee_fraction * total
        if direction is Direction.TO_MIXIN and total <= fee_est:
            worth = False
        if not worth:
            held_s = (self.now_ns() - min(r.created_ns for r in rs)) / 1e9
            what = (f"{self.ledger.format(asset, total)} {asset} to move {direction.side} on {account}: a fee of "
                    f"{self.ledger.format(fee_asset, fee_est)} {fee_asset} (at most {self.config.max_fee_fraction} "
                    f"of it allowed), minimum {self.ledger.format(asset, minimum)}")
            if held_s < self.config.fee_hold_s:
                with self.store.transaction() as tx:
                    alerts.alert(tx, FundsAlert.FEE_TOO_HIGH, f"{group}:{rs[0].part_key}", f"{what}: waits for more")
                return False
            if direction is Direction.TO_EXCHANGE:
                with self.store.transaction() as tx:
                    for r in rs:
                        self.requests.fail(tx, r.part_key)
                    alerts.alert(tx, FundsAlert.FEE_TOO_HIGH, f"{group}:{rs[0].part_key}:failed",
                                 f"{what}: not worth moving after {held_s:.0f} s; the orders stay on Mixin")
                return False
            if total <= fee_est:
                with self.store.transaction() as tx:
                    for r in rs:
                        self.requests.to_dust(tx, r, self.ledger)
                    alerts.alert(tx, FundsAlert.FEE_TOO_HIGH, f"{group}:{rs[0].part_key}:dust",
                                 f"{what}: less than the fee; kept as dust on {account} (unclaimed:dust)")
                return False
            with self.store.transaction() as tx:
                alerts.alert(tx, FundsAlert.FEE_TOO_HIGH, f"{group}:{rs[0].part_key}:sent",
                             f"{what}: sent anyway after {held_s:.0f} s (it is the orders' money)")
        if fee_asset != asset and fee_est and self._fee_float(fee_asset) < fee_est:
            self._short_now.append(FeeShort(group, asset, account, fee_asset, fee_est, self._fee_float(fee_asset)))
            with self.store.transaction() as tx:
                alerts.alert(tx, FundsAlert.FEE_FLOAT_SHORT, f"{group}:{rs[0].part_key}",
                             f"the fee of a move of {asset} is {self.ledger.format(fee_asset, fee_est)} {fee_asset}, "
                             f"which {acc.BOT_FEES} cannot pay (it holds {self.ledger.format(fee_asset, self._fee_float(fee_asset))}"
                             f"): fund it (a payment from a fee payer) and the move goes")
            return False
        whole, rest = spec.to_mixin(send)
        if rest:
            raise MoveError(f"{send} units of {asset} are finer than Mixin's {MIXIN_DECIMALS} decimals")
        with self.store.transaction() as tx:
            self.moves.plan(tx, mid=mid, direction=direction, venue_account=account, asset=asset,
                            parts=[Part(r.part_key, r.claim, r.units) for r in rs], send_units=send,
                            fee_asset=fee_asset, fee_est=fee_est, network=address.network, address=address.address,
                            tag=address.tag, source_ref=source_ref, fee_ref=fee_ref)
            self.requests.assign(tx, keys, mid)
        log.info("move %s planned: %s %s %s on %s for %d parts", mid, direction.side, self.ledger.format(asset, total),
                 asset, account, len(rs), extra={"event": "move_planned", "move": mid})
        self._crash_at("planned", mid)
        return True

    async def _send_planned(self) -> int:
        sent = 0
        now = self.now_ns()
        for m in self.moves.in_flight():
            if m.sent_ns or m.state not in (MoveState.PLANNED, MoveState.STUCK):
                continue
            if m.attempt > 0 and now < m.planned_ns + self.config.retry.delay_s * 1e9:
                continue
            try:
                if m.direction is Direction.TO_EXCHANGE:
                    sent += await self._send_mixin(m)
                else:
                    sent += await self._send_exchange(m)
            except (MixinError, VenueError, LeaseError) as e:
                with self.store.transaction() as tx:
                    self.moves.note(tx, m.move_id, error=str(e)[:500])
                log.warning("move %s not sent yet: %s", m.move_id, e)
        return sent

    async def _send_mixin(self, m: Move) -> int:
        spec = self.assets.symbol(m.asset)
        amount = format_units(spec.to_mixin(m.send_units)[0], MIXIN_DECIMALS, trim=True)
        if m.fee_asset != m.asset and m.fee_est and not self.payments.payment(m.source_ref) \
                and self._fee_float(m.fee_asset) < 0:
            # A retry planned after a failure: the float must still hold its fee (counted in the estimates).
            self._short_now.append(FeeShort(m.move_id, m.asset, m.venue_account, m.fee_asset, m.fee_est,
                                            self._fee_float(m.fee_asset) + m.fee_est))
            with self.store.transaction() as tx:
                alerts.alert(tx, FundsAlert.FEE_FLOAT_SHORT, m.move_id,
                             f"move {m.move_id} needs {self.ledger.format(m.fee_asset, m.fee_est)} {m.fee_asset} of "
                             f"{acc.BOT_FEES} for its fee, which it does not hold: fund it and the move goes")
            return 0
        await self._hygiene(spec)
        try:
            p = await self.payments.withdraw(payment_cause(m.move_id), spec.mixin_asset_id, amount, m.address, m.tag)
        except PaymentFailedError as e:
            with self.store.transaction() as tx:
                self.outcomes.failed(tx, m.move_id, MoveEvent.REFUSED, f"Mixin refused the withdrawal: {e.api_error}")
            return 0
        except InsufficientOutputsError as e:
            if e.capped:
                await self._hygiene(spec, force=True)  # enough money, too many pieces: merge, then send
            raise
        if p.request_id != m.source_ref:
            raise MoveError(f"move {m.move_id}: Payments' request id {p.request_id} is not {m.source_ref}")
        if p.state not in (PaymentState.SENT, PaymentState.CONFIRMED):
            return 0  # an unclear outcome Payments keeps: asked again next time, same cause
        self._crash_at("sent", m.move_id)
        fee = self.payments.withdrawal_fee(p.request_id)
        with self.store.transaction() as tx:
            self.moves.record_sent(tx, m.move_id, f"Mixin has withdrawal {p.request_id}", self.now_ns())
            if fee is not None:
                fee_spec = self.assets.by_mixin_id(fee[0])
                if fee_spec is None:
                    raise MoveError(f"move {m.move_id}: Mixin took its fee in {fee[0]}, not a configured asset")
                self.moves.book_fee(tx, m.move_id, fee_spec.symbol, fee_spec.from_mixin(fee[1]))
        return 1

    async def _send_exchange(self, m: Move) -> int:
        spec = self.assets.symbol(m.asset)
        va = spec.venues[m.venue_account]
        venue = self.venues[m.venue_account]
        if not withdraw_client_ids(venue) and m.send_started_ns:
            return await self._resolve_unreferenced(venue, m)
        if not m.send_started_ns:
            # Written before the request: a process killed before it records the answer leaves a
            # move the next one knows may have left (its deposit waits for it; it is looked for).
            with self.store.transaction() as tx:
                self.moves.note(tx, m.move_id, send_started_ns=self.now_ns(), last_signal="withdrawal being sent")
        amount = Decimal(format_units(m.send_units, spec.decimals))
        try:
            t = await venue.withdraw(m.source_ref, va.currency, amount, m.address, tag=m.tag or None,
                                     network=va.network or None)
        except OrderRejectedError as e:
            with self.store.transaction() as tx:
                self.outcomes.failed(tx, m.move_id, MoveEvent.REFUSED, f"{m.venue_account} refused the withdrawal: {e}")
            return 0
        self._crash_at("sent", m.move_id)
        with self.store.transaction() as tx:
            self.moves.record_sent(tx, m.move_id, f"{m.venue_account} has withdrawal {t.exchange_id}",
                                  self.now_ns(), exchange_id=str(t.exchange_id))
        return 1

    async def _resolve_unreferenced(self, venue: Any, m: Move) -> int:
        """A withdrawal sent without a client id whose answer never came: adopt it if exactly one
        withdrawal matches its reference; else stop in doubt (alerted), never send again."""
        t = await find_by_reference(venue, self.moves, self.assets, m)
        with self.store.transaction() as tx:
            if t is not None:
                self.moves.record_sent(tx, m.move_id,
                                       f"{m.venue_account} withdrawal {t.exchange_id} found by its reference",
                                       self.now_ns(), exchange_id=str(t.exchange_id))
                return 1
            if m.state is not MoveState.STUCK:
                self.moves.fire(tx, m.move_id, MoveEvent.DOUBT, "unclear send, no withdrawal found by its reference")
            alerts.alert(tx, FundsAlert.MOVE_IN_DOUBT, m.move_id,
                         f"move {m.move_id} ({m.direction.side}, {self.ledger.format(m.asset, m.send_units)} {m.asset} "
                         f"on {m.venue_account}, a venue without withdrawal client ids): the send got no clear answer "
                         f"and no withdrawal to {m.address} matches it; it is NOT sent again. Check the venue's "
                         "withdrawals: if it appears, it is adopted; if it never left, an operator must say so")
        return 0

    # --- helpers ----------------------------------------------------------------------------------

    def _venue_asset(self, asset: str, account: str) -> AssetSpec:
        spec = self.assets.symbol(asset)
        if account not in spec.venues:
            raise MoveError(f"asset {asset} is not configured on {account}")
        return spec

    def _in_doubt(self, account: str, asset: str) -> bool:
        return any(m.direction is Direction.TO_MIXIN and m.venue_account == account and m.asset == asset
                   and not m.exchange_id for m in self.moves.in_flight())

    async def _chain(self, spec: AssetSpec) -> str:
        if spec.mixin_asset_id not in self._chains:
            a = await self.payments.client.asset(spec.mixin_asset_id)
            self._chains[spec.mixin_asset_id] = str(a["chain_id"])
        return self._chains[spec.mixin_asset_id]

    async def _mixin_fee(self, spec: AssetSpec, address: str) -> tuple[str, int]:
        """(fee symbol, ledger units) Mixin asks for a withdrawal to `address`; the fee in the
        withdrawn asset when offered, as `Payments` chooses."""
        fees = await self.payments.client.withdrawal_fees(spec.mixin_asset_id, address)
        if not fees:
            raise MoveError(f"Mixin offers no withdrawal fee for {spec.symbol} to {address}")
        fee = next((f for f in fees if f["asset_id"] == spec.mixin_asset_id), fees[0])
        fee_spec = self.assets.by_mixin_id(fee["asset_id"])
        if fee_spec is None:
            raise MoveError(f"a withdrawal of {spec.symbol} pays its fee in {fee['asset_id']}, which is not a "
                            "configured asset: configure it (and fund bot:fees with it)")
        return fee_spec.symbol, fee_spec.from_mixin(to_units(fee["amount"], MIXIN_DECIMALS))

    def _exchange_fee(self, account: str, spec: AssetSpec) -> int:
        info = self.networks.get((account, spec.symbol))
        if info is None:
            raise MoveError(f"{account}'s network for {spec.symbol} is not known: run the asset check first")
        return to_units(info.withdraw_fee, spec.decimals, rounding=Rounding.CEIL)

    def _fee_float(self, fee_asset: str) -> int:
        """What `bot:fees` can still pay in `fee_asset`: its claim less the estimates of moves
        planned but not booked yet."""
        pending = sum(m.fee_est for m in self.moves.in_flight() if m.fee_asset == fee_asset and m.fee_asset != m.asset
                      and m.fee_units == NOT_BOOKED)
        return self.ledger.owed(acc.BOT_FEES, fee_asset) - pending

    async def _hygiene(self, spec: AssetSpec, *, force: bool = False) -> None:
        """Merges the oldest unspent outputs of the asset into one when there are `consolidate_at`
        or more (or, `force`, at least two), at most SLICE_LIMIT - 1 at a time."""
        client = self.payments.client
        outputs = [o async for o in client.iter_outputs(asset=spec.mixin_asset_id)]
        if len(outputs) < (2 if force else self.config.consolidate_at):
            return
        take = outputs[:SLICE_LIMIT - 1]
        amount = sum(o.units for o in take)
        cause = f"consolidate:{spec.mixin_asset_id}:{take[0].output_id}"
        try:
            await self.payments.consolidate(cause, spec.mixin_asset_id, format_units(amount, MIXIN_DECIMALS, trim=True))
        except LocalPaymentError as e:
            log.warning("consolidating %s: %s", spec.symbol, e)
            return
        with self.store.transaction() as tx:
            alerts.alert(tx, FundsAlert.CONSOLIDATED, cause, f"{len(take)} unspent outputs of {spec.symbol} merged "
                         f"into one ({format_units(amount, MIXIN_DECIMALS)})")


def withdraw_client_ids(venue: Any) -> bool:
    """Does the venue take a client id on a withdrawal (and find it by that id)?"""
    return bool(getattr(venue, "withdraw_client_ids", True))


async def find_by_reference(venue: Any, moves: MoveBook, assets: AssetMap, m: Move) -> Any | None:
    """The one withdrawal of a venue without client ids that is move `m`'s: to its address (and
    tag), for its amount (gross or net of the fee), made since its send started, and no other
    move's. None when there is none, or more than one."""
    spec = assets.symbol(m.asset)
    currency = spec.venues[m.venue_account].currency
    since = max(0, m.send_started_ns // 1_000_000 - 60_000)
    rows = await venue.withdrawals(currency, since)
    claimed = {x.exchange_id for x in moves.all() if x.exchange_id and x.move_id != m.move_id}
    gross = Decimal(format_units(m.send_units, spec.decimals))
    net = Decimal(format_units(m.send_units - m.fee_est, spec.decimals))
    found = [t for t in rows if (t.address or "") == m.address and str(t.exchange_id) not in claimed
             and (t.amount in (gross, net) or t.amount + t.fee == gross) and t.time_ms >= since]
    return found[0] if len(found) == 1 else None
