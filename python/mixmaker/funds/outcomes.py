"""How a move ends, in one store transaction each: what arrived is booked and its requests are
done; what failed is booked back to its source, and then either retried under a new id derived
from the old one (`<root>.r<n>`, the same parts, the same address) or, with no attempt left,
its requests fail. Used by the mover (a refusal), the confirmation worker (an exchange's failed
withdrawal, a deposit credited) and intake (a Mixin deposit of ours, a failed Mixin withdrawal
coming back)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mixmaker.funds import alerts
from mixmaker.funds.alerts import FundsAlert
from mixmaker.funds.moves import (
    NOT_BOOKED,
    Direction,
    Move,
    MoveBook,
    MoveEvent,
    MoveState,
    Part,
    payment_cause,
    retry_id,
    split_fee,
    withdraw_client_id,
)
from mixmaker.funds.requests import Requests, RequestState
from mixmaker.mixin.ids import unique_object_id
from mixmaker.store.base import Transaction

log = logging.getLogger("mixmaker.funds.outcomes")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3  # attempts of one move, the first included
    delay_s: float = 5.0  # a retry is sent no sooner than this after the failure


def mixin_refs(mid: str, fee_separate: bool) -> tuple[str, str]:
    """The Mixin request id of a move's withdrawal (Payments derives it from the cause), and its
    separate fee transaction's ("" when the fee is in the withdrawn asset)."""
    rid = unique_object_id(payment_cause(mid), "withdrawal")
    return rid, unique_object_id(rid, "FEE") if fee_separate else ""


class Outcomes:
    def __init__(self, moves: MoveBook, requests: Requests, retry: RetryPolicy | None = None) -> None:
        self.moves, self.requests = moves, requests
        self.retry = retry or RetryPolicy()

    def arrived(self, tx: Transaction, mid: str, units: int, signal: str) -> Move:
        """The destination credited `units` of the move: booked, the move ARRIVED, its requests done."""
        self.moves.book_arrival(tx, mid, units)
        m = self.moves.move(mid, tx)
        if m.state is not MoveState.ARRIVED:
            m = self.moves.fire(tx, mid, MoveEvent.CREDITED, signal)
        self.requests.settle(tx, mid, RequestState.DONE)
        self.check_amounts(tx, m)
        return m

    def check_amounts(self, tx: Transaction, m: Move) -> None:
        """Once both are known, what arrived must be what was sent less the exchange's fee."""
        if m.arrived_units == NOT_BOOKED or (m.direction is Direction.TO_MIXIN and m.fee_units == NOT_BOOKED):
            return
        if m.arrived_units != m.expected_net:
            alerts.alert(tx, FundsAlert.MOVE_MISMATCH, m.move_id,
                         f"move {m.move_id} ({m.direction.side}, {m.asset}): {m.expected_net} units expected, "
                         f"{m.arrived_units} arrived; the difference stays in transit:{m.move_id}")

    def failed(self, tx: Transaction, mid: str, event: MoveEvent, signal: str,
               back: dict[str, int] | None = None) -> Move | None:
        """The source refused the move (REFUSED) or reports it failed (REVERSED), and `back` (or all
        that is in transit) is at the source again: booked back; then a retry, or the requests
        fail. Returns the retry move, if any."""
        m = self.moves.move(mid, tx)
        if m.state is MoveState.FAILED:
            return None
        self.moves.book_reversal(tx, mid, back)
        m = self.moves.fire(tx, mid, event, signal)
        attempt = m.attempt + 1
        if attempt >= self.retry.max_attempts:
            self.requests.settle(tx, mid, RequestState.FAILED)
            alerts.alert(tx, FundsAlert.MOVE_FAILED, mid, f"move {mid} ({m.direction.side}, {m.units} units of {m.asset} "
                         f"on {m.venue_account}) failed ({signal}); no attempt left: its requests fail")
            return None
        alerts.alert(tx, FundsAlert.MOVE_FAILED, mid, f"move {mid} ({m.direction.side}, {m.units} units of {m.asset} "
                     f"on {m.venue_account}) failed ({signal}); reversed; attempt {attempt + 1} follows")
        new = retry_id(mid, attempt)
        if m.direction is Direction.TO_EXCHANGE:
            source_ref, fee_ref = mixin_refs(new, m.fee_asset != m.asset)
        else:
            source_ref, fee_ref = withdraw_client_id(new), ""
        parts = self.moves.parts(tx, mid)
        send = m.send_units
        if m.fee_units != NOT_BOOKED and m.fee_asset == m.asset and m.direction is Direction.TO_EXCHANGE:
            # The failed withdrawal's fee was paid and charged to its parts: they move what is left.
            shares = split_fee(m.fee_units, [(p.key, p.units) for p in parts])
            parts = [Part(p.key, p.claim, p.units - shares[p.key]) for p in parts]
            send = sum(p.units for p in parts) - m.fee_est
        if send <= 0:
            self.requests.settle(tx, mid, RequestState.FAILED)
            return None
        retry = self.moves.plan(tx, mid=new, direction=m.direction, venue_account=m.venue_account, asset=m.asset,
                                parts=parts, send_units=send, fee_asset=m.fee_asset, fee_est=m.fee_est,
                                network=m.network, address=m.address, tag=m.tag, source_ref=source_ref, fee_ref=fee_ref,
                                attempt=attempt)
        self.requests.assign(tx, [p.key for p in parts], new)
        log.warning("move %s failed (%s): retried as %s", mid, signal, new,
                    extra={"event": "move_retried", "move": mid, "retry": new})
        return retry
