"""The confirmation worker: follows every move in flight until it has arrived.

Mixin -> exchange: the withdrawal's chain hash (`Payments.refresh_withdrawal`: Mixin's
`withdrawal_hash`), then the exchange's deposit history showing that hash credited; only then
is it ARRIVED (booked: transit -> exchange). A failed Mixin withdrawal comes back as a snapshot
(intake, `mixmaker.funds.arrivals`).

Exchange -> Mixin: the exchange's withdrawal (by client id, or by its id on a venue without
client ids): completed with a txid is SEEN (and its fee booked); failed or rejected is reversed
(the venue gave the money back) and retried when attempts are left. The arrival is the Mixin
deposit snapshot whose `deposit_hash` is that txid (intake).

A move past its stage's expected time is STUCK: an alert with the move, the side and the last
signal seen; it is still followed, and the next signal moves it on. A venue that does not answer
is asked again on the next round; nothing here ever sends money.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from mixmaker.funds import alerts
from mixmaker.funds.alerts import FundsAlert
from mixmaker.funds.assets import AssetMap
from mixmaker.funds.mover import find_by_reference, withdraw_client_ids
from mixmaker.funds.moves import NOT_BOOKED, Direction, Move, MoveBook, MoveEvent, MoveState
from mixmaker.funds.outcomes import Outcomes
from mixmaker.mixin.errors import MixinError
from mixmaker.mixin.payments import Payments
from mixmaker.money import Rounding, to_units
from mixmaker.orders.errors import VenueError
from mixmaker.store import Store

log = logging.getLogger("mixmaker.funds.confirm")


class ConfirmWorker:
    def __init__(self, store: Store, moves: MoveBook, outcomes: Outcomes, assets: AssetMap, payments: Payments,
                 venues: Mapping[str, Any], *, now_ns: Callable[[], int] = time.time_ns,
                 crash_at: Callable[[str, str], None] | None = None) -> None:
        self.store, self.moves, self.outcomes, self.assets = store, moves, outcomes, assets
        self.payments = payments
        self.venues = dict(venues)
        self.now_ns = now_ns
        self._crash_at = crash_at or (lambda step, ident: None)
        self.errors = 0  # venue calls that failed (each asked again on the next round)

    async def run_once(self) -> int:
        """One round over every move in flight (and arrived exchange withdrawals whose fee is not
        booked yet); returns how many changed."""
        changed = 0
        for m in self._followed():
            try:
                if await self.follow(m):
                    changed += 1
            except (MixinError, VenueError) as e:
                self.errors += 1
                log.warning("move %s: %s (asked again next round)", m.move_id, e)
        self._late()
        return changed

    def _followed(self) -> list[Move]:
        out = self.moves.in_flight()
        out += [m for m in self.moves.all() if m.state is MoveState.ARRIVED and m.direction is Direction.TO_MIXIN
                and m.fee_units == NOT_BOOKED]
        return out

    async def follow(self, m: Move) -> bool:
        if not m.sent_ns and not (m.direction is Direction.TO_MIXIN and m.send_started_ns
                                  and (m.exchange_id or withdraw_client_ids(self.venues[m.venue_account]))):
            return False  # not sent yet (or, without client ids, unclear): the mover's
        if m.direction is Direction.TO_EXCHANGE:
            return await self._follow_mixin_withdrawal(m)
        return await self._follow_exchange_withdrawal(m)

    # --- Mixin -> exchange ------------------------------------------------------------------------

    async def _follow_mixin_withdrawal(self, m: Move) -> bool:
        changed = False
        if not m.tx_hash:
            p = await self.payments.refresh_withdrawal(m.source_ref)
            if not p.withdrawal_hash:
                return False
            with self.store.transaction() as tx:
                self.moves.fire(tx, m.move_id, MoveEvent.SEEN, f"on chain: {p.withdrawal_hash}",
                                tx_hash=p.withdrawal_hash)
            self._crash_at("seen", m.move_id)
            m = self.moves.move(m.move_id)
            changed = True
        spec = self.assets.symbol(m.asset)
        currency = spec.venues[m.venue_account].currency
        venue = self.venues[m.venue_account]
        deposits = [t for t in await venue.deposits(currency) if t.txid == m.tx_hash]
        credited = [t for t in deposits if t.status == "ok"]
        if not credited:
            if deposits:
                with self.store.transaction() as tx:
                    self.moves.note(tx, m.move_id, last_signal=f"{m.venue_account} shows deposit {m.tx_hash} "
                                                               f"{deposits[0].status}")
            return changed
        units = to_units(credited[0].amount, spec.decimals, rounding=Rounding.FLOOR)
        with self.store.transaction() as tx:
            self.outcomes.arrived(tx, m.move_id, units, f"{m.venue_account} credited deposit {m.tx_hash}")
        self._crash_at("arrived", m.move_id)
        return True

    # --- exchange -> Mixin ------------------------------------------------------------------------

    async def _follow_exchange_withdrawal(self, m: Move) -> bool:
        spec = self.assets.symbol(m.asset)
        currency = spec.venues[m.venue_account].currency
        venue = self.venues[m.venue_account]
        if withdraw_client_ids(venue):
            t = await venue.find_withdrawal(currency, m.source_ref)
        else:
            t = next((x for x in await venue.withdrawals(currency) if str(x.exchange_id) == m.exchange_id), None)
            if t is None and not m.exchange_id:
                t = await find_by_reference(venue, self.moves, self.assets, m)
        if t is None:
            return False
        if not m.sent_ns:
            with self.store.transaction() as tx:  # a send whose answer was never recorded, found after all
                self.moves.record_sent(tx, m.move_id, f"withdrawal {t.exchange_id} found", self.now_ns(),
                                       exchange_id=str(t.exchange_id))
            m = self.moves.move(m.move_id)
        if t.status in ("failed", "canceled"):
            if m.tx_hash or m.state is MoveState.ARRIVED:
                with self.store.transaction() as tx:
                    alerts.alert(tx, FundsAlert.MOVE_MISMATCH, f"{m.move_id}:failed-after-chain",
                                 f"{m.venue_account} reports withdrawal {t.exchange_id} {t.status} after it was on "
                                 f"chain ({m.tx_hash}): nothing is reversed; an operator must look")
                return False
            with self.store.transaction() as tx:
                self.outcomes.failed(tx, m.move_id, MoveEvent.REVERSED,
                                     f"{m.venue_account} reports withdrawal {t.exchange_id} {t.status}")
            self._crash_at("reversed", m.move_id)
            return True
        if t.status != "ok" or not t.txid:
            with self.store.transaction() as tx:
                self.moves.note(tx, m.move_id, last_signal=f"{m.venue_account} withdrawal {t.exchange_id} {t.status}")
            return False
        fee = to_units(Decimal(t.fee), spec.decimals, rounding=Rounding.CEIL)
        with self.store.transaction() as tx:
            if not m.tx_hash:
                self.moves.fire(tx, m.move_id, MoveEvent.SEEN, f"on chain: {t.txid}", tx_hash=str(t.txid))
            self.moves.book_fee(tx, m.move_id, m.asset, fee)
            self.outcomes.check_amounts(tx, self.moves.move(m.move_id, tx))
        self._crash_at("seen", m.move_id)
        return True

    # --- stuck --------------------------------------------------------------------------------------

    def _late(self) -> None:
        now = self.now_ns()
        for m in self.moves.in_flight():
            if m.state not in (MoveState.PLANNED, MoveState.SENT, MoveState.SEEN) or not m.deadline_ns \
                    or now <= m.deadline_ns:
                continue
            waited = (now - m.stage_ns) / 1e9
            with self.store.transaction() as tx:
                self.moves.fire(tx, m.move_id, MoveEvent.LATE, m.last_signal)
                alerts.alert(tx, FundsAlert.MOVE_STUCK, f"{m.move_id}:{m.state.value}",
                             f"move {m.move_id} ({m.direction.side}, {self.moves.ledger.format(m.asset, m.send_units)} "
                             f"{m.asset}, {m.venue_account}) is stuck: {m.state.value} for {waited:.0f} s; "
                             f"waiting for {_waiting_for(m)}; last signal: {m.last_signal}")
            log.warning("move %s stuck in %s: %s", m.move_id, m.state.value, m.last_signal,
                        extra={"event": "move_stuck", "move": m.move_id})


def _waiting_for(m: Move) -> str:
    if m.direction is Direction.TO_EXCHANGE:
        return {MoveState.PLANNED: "Mixin to take the withdrawal", MoveState.SENT: "its withdrawal hash on chain",
                MoveState.SEEN: f"{m.venue_account} to credit deposit {m.tx_hash}"}.get(m.state, "?")
    return {MoveState.PLANNED: f"{m.venue_account} to take the withdrawal",
            MoveState.SENT: f"{m.venue_account} to put withdrawal {m.exchange_id} on chain",
            MoveState.SEEN: f"Mixin to credit deposit {m.tx_hash}"}.get(m.state, "?")
