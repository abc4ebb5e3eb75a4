"""Transfers and withdrawals that pay exactly once, across retries, timeouts and crashes.

The request id is derived from the caller's own id (UniqueObjectId) and the intent is stored
before anything is sent. The signed transactions are stored before they are broadcast, so a
restart re-sends the very same bytes; Mixin answers a known request id with the existing
request, and the kernel never spends an output twice. An unclear outcome is resolved by reading
the request's state, never by building a new transaction. Spending is serialized per asset.

States: pending (intent stored) -> signed (raws stored) -> sent (Mixin has it) -> confirmed
(withdrawal hash on chain) | failed (Mixin refused it for good; nothing was paid, a new cause
is needed to try again). The journal only moves forward, so a late writer cannot undo a later
state.

Several processes may pay from one database (an overlap during a redeploy, or workers on
PostgreSQL): the spending of one asset is serialized by a lease in the store, not a per-process
lock. A payer that finds the request already `signed`/`spent` on Mixin (another payer broadcast
it) records it as sent. `failed` is written only for a refusal of the payment itself (address,
memo, amount), after reading that no transaction of it was broadcast, while holding the lease.
UTXO contention (10105, 2000002, inputs gone) is retried with fresh outputs, never a failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from mixmaker.mixin import kernel
from mixmaker.mixin.amounts import from_units, to_units
from mixmaker.mixin.client import MixinClient
from mixmaker.mixin.errors import (
    LocalPaymentError,
    MixinApiError,
    MixinError,
    MixinTransportError,
    NotFoundError,
    RequestIdConflictError,
    is_utxo_contention,
)
from mixmaker.mixin.ids import kernel_asset_id, parse_uuid, unique_object_id
from mixmaker.mixin.models import Output, TransactionRequest
from mixmaker.mixin.utxo import InsufficientOutputsError, select_outputs
from mixmaker.store import Store
from mixmaker.store.lease import Held, LeaseError, LeaseLostError, Leases

log = logging.getLogger("mixmaker.mixin.payments")

FEE_USER_ID = "674d6776-d600-4346-af46-58e77d8df185"

MIGRATIONS = [
    """CREATE TABLE mixin_payments (
        request_id TEXT PRIMARY KEY,
        cause TEXT NOT NULL,
        kind TEXT NOT NULL,
        asset_id TEXT NOT NULL,
        units INTEGER NOT NULL,
        opponent TEXT NOT NULL,
        tag TEXT NOT NULL,
        memo BLOB NOT NULL,
        state TEXT NOT NULL,
        raws TEXT,
        transaction_hash TEXT,
        withdrawal_hash TEXT,
        error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (cause, kind)
    )""",
    # The unsigned transactions of a pending payment, stored before Mixin is asked to verify
    # them: their inputs stay reserved if the process dies before it signs.
    "ALTER TABLE mixin_payments ADD COLUMN planned TEXT",
    # A withdrawal's fee as the plan chose it (asset id, units), written with `planned`: the
    # funds layer books exactly what was paid.
    "ALTER TABLE mixin_payments ADD COLUMN fee TEXT",
]


class PaymentConflictError(LocalPaymentError):
    """The same cause was already used for a payment with other parameters."""


class PaymentFailedError(LocalPaymentError):
    """Mixin refused the payment for good; nothing was paid. `api_error` says why."""

    def __init__(self, request_id: str, api_error: MixinApiError) -> None:
        self.request_id, self.api_error = request_id, api_error
        super().__init__(f"payment {request_id} refused: {api_error}")


class PaymentState(StrEnum):
    PENDING = "pending"  # intent stored
    SIGNED = "signed"  # signed raws stored, maybe not broadcast
    SENT = "sent"  # Mixin has it
    CONFIRMED = "confirmed"  # a withdrawal's chain hash is known
    FAILED = "failed"  # refused for good, nothing paid


FINAL = (PaymentState.SENT, PaymentState.CONFIRMED, PaymentState.FAILED)
# The states each state may be entered from: the journal only moves forward.
_FROM: dict[PaymentState, tuple[PaymentState, ...]] = {
    PaymentState.SIGNED: (PaymentState.PENDING,),
    PaymentState.SENT: (PaymentState.PENDING, PaymentState.SIGNED),
    PaymentState.CONFIRMED: (PaymentState.SENT,),
}


@dataclass(frozen=True)
class Payment:
    request_id: str
    cause: str
    kind: str  # transfer | withdrawal
    asset_id: str
    units: int
    opponent: str  # user id, or chain address for a withdrawal
    tag: str
    memo: bytes
    state: PaymentState
    transaction_hash: str
    withdrawal_hash: str
    error: str

    @property
    def amount(self) -> Decimal:
        return from_units(self.units)


_COLUMNS = "request_id, cause, kind, asset_id, units, opponent, tag, memo, state, transaction_hash, withdrawal_hash, error"

# Steps at which a test may stop the process (see `crash_at`); "verified": Mixin holds the unsigned request.
STEPS = ("recorded", "verified", "signed", "broadcast", "sent")


def _row(r: tuple[Any, ...]) -> Payment:
    request_id, cause, kind, asset_id, units, opponent, tag, memo, state, tx_hash, withdrawal_hash, error = r
    return Payment(request_id, cause, kind, asset_id, units, opponent, tag, bytes(memo), PaymentState(state), tx_hash,
                   withdrawal_hash, error)


class Payments:
    """Pays causes once. Payments of one asset are settled under that asset's lease in the store
    (`Leases`), so two processes on one database (an overlap during a redeploy) take turns; a
    withdrawal whose fee is in another asset holds both leases."""

    def __init__(self, client: MixinClient, store: Store, *, crash_at: Callable[[str, str], None] | None = None,
                 uncertain_retries: int = 5, uncertain_backoff_s: float = 0.5, leases: Leases | None = None,
                 lease_ttl_s: float = 10.0, lease_wait_s: float | None = 300.0, contention_retries: int = 6,
                 contention_backoff_s: float = 0.5) -> None:
        self.client = client
        self.store = store
        self.app_id = client.keystore.app_id
        self._crash_at = crash_at or (lambda step, request_id: None)
        self.uncertain_retries = uncertain_retries
        self.uncertain_backoff_s = uncertain_backoff_s
        self.leases = leases or Leases(store, ttl_s=lease_ttl_s)
        self.lease_wait_s = lease_wait_s
        self.contention_retries = contention_retries
        self.contention_backoff_s = contention_backoff_s
        store.migrate("mixin_payments", MIGRATIONS)

    def lease_name(self, asset_id: str) -> str:
        """The lease a payer holds while it spends this bot's outputs of `asset_id`."""
        return f"mixin-payments:{self.app_id}:{asset_id}"

    # --- public --------------------------------------------------------------------------

    async def transfer(self, cause: str, asset_id: str, amount: Decimal | str, opponent_id: str,
                       memo: bytes = b"") -> Payment:
        """Pays `amount` to a Mixin user once for this `cause` (e.g. "refund:<snapshot id>")."""
        opponent_id = parse_uuid(opponent_id, "opponent_id")
        if opponent_id == self.app_id:
            raise LocalPaymentError("a transfer to the bot itself (see consolidate)")
        return await self._pay(cause, "transfer", asset_id, amount, opponent_id, "", memo)

    async def withdraw(self, cause: str, asset_id: str, amount: Decimal | str, destination: str, tag: str = "",
                       memo: bytes = b"") -> Payment:
        """Withdraws `amount` to a chain address once for this `cause`; the fee is paid on top."""
        if not destination or destination != destination.strip():
            raise LocalPaymentError(f"bad destination address {destination!r}")
        return await self._pay(cause, "withdrawal", asset_id, amount, destination, tag, memo)

    async def consolidate(self, cause: str, asset_id: str, amount: Decimal | str) -> Payment:
        """Pays `amount` to the bot itself once for this `cause`: the oldest unspent outputs that
        make it up become one output (UTXO hygiene: many small payments in would otherwise make a
        payment need more inputs than one transaction takes). The wallet's balance is unchanged."""
        return await self._pay(cause, "transfer", asset_id, amount, self.app_id, "", b"")

    def withdrawal_fee(self, request_id: str) -> tuple[str, int] | None:
        """(fee asset id, units) a withdrawal's signed plan pays, once it is planned; None before."""
        rows = self.store.query("SELECT fee FROM mixin_payments WHERE request_id = ?", (request_id,))
        if not rows or not rows[0][0]:
            return None
        asset_id, units = json.loads(rows[0][0])
        return asset_id, int(units)

    def payment(self, request_id: str) -> Payment | None:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM mixin_payments WHERE request_id = ?", (request_id,))
        return _row(rows[0]) if rows else None

    def unfinished(self) -> list[Payment]:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM mixin_payments WHERE state IN ('pending', 'signed') "
                                "ORDER BY created_at")
        return [_row(r) for r in rows]

    async def recover(self) -> list[Payment]:
        """At start-up: finish every payment a previous run left pending or signed. One that
        cannot finish now does not stop the others; the first such error is raised at the end."""
        done, errors = [], []
        for p in self.unfinished():
            try:
                done.append(await self._settle_leased(p))
            except (MixinError, LeaseError) as e:
                log.warning("payment %s (cause %r) not finished at recovery: %s", p.request_id, p.cause, e)
                errors.append(e)
                done.append(self._get(p.request_id))
        if errors:
            raise errors[0]
        return done

    async def refresh_withdrawal(self, request_id: str) -> Payment:
        """Reads the withdrawal's chain hash; the payment is `confirmed` once it is there."""
        p = self._get(request_id)
        if p.kind != "withdrawal" or p.state not in (PaymentState.SENT, PaymentState.CONFIRMED):
            return p
        req = await self.client.transaction(request_id)
        hashes = [h for h in (req.withdrawal_hashes if req else ()) if h]
        if hashes:
            self._advance(request_id, PaymentState.CONFIRMED, withdrawal_hash=hashes[0])
        return self._get(request_id)

    # --- the steps -----------------------------------------------------------------------

    async def _pay(self, cause: str, kind: str, asset_id: str, amount: Decimal | str, opponent: str, tag: str,
                   memo: bytes) -> Payment:
        asset_id = parse_uuid(asset_id, "asset_id")
        units = to_units(amount)
        if units <= 0:
            raise LocalPaymentError(f"amount must be positive, got {amount}")
        if len(memo) > kernel.EXTRA_LIMIT:
            raise LocalPaymentError(f"memo is {len(memo)} bytes, at most {kernel.EXTRA_LIMIT}")
        request_id = unique_object_id(cause, kind)
        now = time.time_ns()
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO mixin_payments (request_id, cause, kind, asset_id, units, opponent, tag, memo, state, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                (request_id, cause, kind, asset_id, units, opponent, tag, memo, now, now),
            )
        p = self._get(request_id)
        if (p.cause, p.kind, p.asset_id, p.units, p.opponent, p.tag, bytes(p.memo)) != (
            cause, kind, asset_id, units, opponent, tag, memo
        ):
            raise PaymentConflictError(f"cause {cause!r} already paid {p.kind} of {p.amount} to {p.opponent}")
        self._crash_at("recorded", request_id)
        return await self._settle_leased(p)

    async def _settle_leased(self, p: Payment) -> Payment:
        if p.state in FINAL:
            return p
        # The outputs of an asset are spent by one payer at a time, whichever process it runs in;
        # a withdrawal whose fee is in another asset also holds that asset.
        assets = {p.asset_id, await self._fee_asset(p)} if p.kind == "withdrawal" else {p.asset_id}
        async with self.leases.hold(*(self.lease_name(a) for a in assets), wait_s=self.lease_wait_s) as held:
            # Read again under the lease: another payer may have settled it meanwhile.
            return await self._settle(self._get(p.request_id), held)

    async def _settle(self, p: Payment, held: Held) -> Payment:
        # Twice at most: a payment set back to pending (another payer verified other bytes under
        # its request id) is signed again from those bytes.
        for _ in range(2):
            if p.state in FINAL:
                return p
            if p.state == PaymentState.PENDING:
                signed = await self._sign_pending(p, held)
                if signed is None:  # an earlier run or another payer broadcast it
                    return self._get(p.request_id)
                self._advance(p.request_id, PaymentState.SIGNED, raws=json.dumps(signed),
                              transaction_hash=kernel.decode(bytes.fromhex(signed[0][1])).hash().hex())
                self._crash_at("signed", p.request_id)
                p = self._get(p.request_id)
                if p.state != PaymentState.SIGNED:
                    continue  # another payer moved it on meanwhile
            p = await self._send(p, held)
        return p

    async def _sign_pending(self, p: Payment, held: Held) -> list[list[str]] | None:
        """Builds, verifies and signs the payment; None once it is known to be broadcast (marked
        sent). UTXO contention (another payment took our inputs) is retried with fresh outputs:
        nothing of ours was broadcast, so building anew is safe."""
        for attempt in range(self.contention_retries + 1):
            if await self._mark_sent_if_broadcast(p):
                return None
            held.check()
            try:
                signed = await self._build_and_sign(p)
            except InsufficientOutputsError:
                # Outputs in flight (`signed`, not final yet) come back as change soon.
                if attempt == self.contention_retries or not await self.client.outputs(
                        asset=p.asset_id, state="signed", limit=1):
                    raise
                why = "outputs in flight"
            except MixinApiError as e:
                if e.refuses_payment:
                    await self._fail(p, e, held)
                    return None
                if not (is_utxo_contention(e) or isinstance(e, RequestIdConflictError)) \
                        or attempt == self.contention_retries:
                    raise
                why = str(e)
            else:
                if signed is not None:
                    return signed
                continue  # the request came back signed or spent: marked sent above
            log.info("payment %s (cause %r): building again after contention: %s", p.request_id, p.cause, why)
            await asyncio.sleep(self.contention_backoff_s * (attempt + 1))
        return None  # unreachable: the last attempt raises

    async def _send(self, p: Payment, held: Held) -> Payment:
        raws = [tuple(r) for r in json.loads(self._raws(p.request_id))]
        for attempt in range(self.uncertain_retries + 1):
            held.check()
            try:
                result = await self.client.broadcast(raws)
            except (MixinTransportError, MixinApiError) as e:
                # First: did it (or another payer's copy of it) go through anyway?
                if await self._mark_sent_if_broadcast(p):
                    return self._get(p.request_id)
                if isinstance(e, NotFoundError) and attempt < self.uncertain_retries:
                    # Mixin no longer knows the request (it was never signed there): verify
                    # the same unsigned bytes again; the stored signatures still hold.
                    try:
                        await self.client.create_transaction_requests(
                            [(rid, kernel.encode(kernel.decode(bytes.fromhex(raw)).unsigned()).hex())
                             for rid, raw in raws])
                    except RequestIdConflictError:
                        return self._back_to_pending(p)
                    continue
                if isinstance(e, RequestIdConflictError):
                    return self._back_to_pending(p)
                if isinstance(e, MixinApiError) and not e.retryable:
                    if e.refuses_payment or is_utxo_contention(e):
                        # These signed bytes are the only ones Mixin accepts under this request id,
                        # and it refused them for good (their inputs went to another transaction).
                        await self._fail(p, e, held)
                        return self._get(p.request_id)
                    raise  # unclear what it means: keep it signed, a later run reads its state
                # No clear answer: ask again later before sending again (the same bytes, so never twice).
                if attempt == self.uncertain_retries:
                    raise
                await asyncio.sleep(self.uncertain_backoff_s * 2**attempt)
                continue
            if result and result[0].state not in ("signed", "spent"):
                raise MixinTransportError(f"broadcast of {p.request_id} answered state {result[0].state!r}")
            self._crash_at("broadcast", p.request_id)
            break
        self._advance(p.request_id, PaymentState.SENT)
        self._crash_at("sent", p.request_id)
        return self._get(p.request_id)

    async def _mark_sent_if_broadcast(self, p: Payment) -> bool:
        """Reads the request by id: `signed` or `spent` means Mixin has it (our earlier run or
        another payer broadcast it): the payment is sent."""
        known = await self.client.transaction(p.request_id)
        if known is None or known.state not in ("signed", "spent"):
            return False
        self._advance(p.request_id, PaymentState.SENT, transaction_hash=known.transaction_hash)
        return True

    async def _fail(self, p: Payment, e: MixinApiError, held: Held) -> None:
        """Records `failed` (nothing paid) only if Mixin refused this payment for good, no
        transaction of it is broadcast, and we still hold the lease (so no other payer is at it);
        raises PaymentFailedError then. Marks it sent instead if it turns out broadcast."""
        if await self._mark_sent_if_broadcast(p):
            return
        with self.store.transaction() as tx:
            if not held.holds(tx):
                raise LeaseLostError(", ".join(lease.name for lease in held.leases), self.leases.owner)
            tx.execute("UPDATE mixin_payments SET state = 'failed', error = ?, updated_at = ? "
                       "WHERE request_id = ? AND state IN ('pending', 'signed')",
                       (str(e), time.time_ns(), p.request_id))
        if self._get(p.request_id).state == PaymentState.FAILED:
            log.warning("payment %s (cause %r) refused by Mixin, nothing paid: %s", p.request_id, p.cause, e)
            raise PaymentFailedError(p.request_id, e) from None

    def _back_to_pending(self, p: Payment) -> Payment:
        """Mixin holds other bytes under this request id (verified by another payer, never
        broadcast): ours can never be sent; sign theirs instead."""
        log.warning("payment %s (cause %r): Mixin holds other bytes for it; signing those", p.request_id, p.cause)
        with self.store.transaction() as tx:
            tx.execute("UPDATE mixin_payments SET state = 'pending', raws = NULL, transaction_hash = NULL, "
                       "updated_at = ? WHERE request_id = ? AND state = 'signed'", (time.time_ns(), p.request_id))
        return self._get(p.request_id)

    # --- building ------------------------------------------------------------------------

    async def _fee_asset(self, p: Payment) -> str:
        return (await self._pick_fee(p))[0]

    async def _pick_fee(self, p: Payment) -> tuple[str, int]:
        fees = await self.client.withdrawal_fees(p.asset_id, p.opponent)
        if not fees:
            raise LocalPaymentError(f"no withdrawal fee offered for {p.asset_id} to {p.opponent}")
        # Prefer paying the fee in the withdrawn asset: one transaction instead of two.
        fee = next((f for f in fees if f["asset_id"] == p.asset_id), fees[0])
        return fee["asset_id"], to_units(fee["amount"])

    async def _build_and_sign(self, p: Payment) -> list[list[str]] | None:
        """[[request_id, signed raw hex], ...]: the payment, then its fee transaction if separate;
        None if Mixin answers that the request is already signed or spent (never sign it twice)."""
        fee_request_id = unique_object_id(p.request_id, "FEE")
        known = await self.client.transaction(p.request_id)
        if known is not None and known.state == "unspent":
            # Verified by Mixin in a previous run but never signed: sign exactly that raw, so the
            # request id keeps matching its content.
            plan = [(p.request_id, kernel.decode(bytes.fromhex(known.raw_transaction)))]
            fee_known = await self.client.transaction(fee_request_id)
            if fee_known is not None:
                plan.append((fee_request_id, kernel.decode(bytes.fromhex(fee_known.raw_transaction))))
            fee = self.withdrawal_fee(p.request_id)  # written with the plan Mixin verified
        else:
            plan, fee = await self._plan(p, fee_request_id)
        unsigned = [(rid, kernel.encode(t).hex()) for rid, t in plan]
        with self.store.transaction() as tx:
            tx.execute("UPDATE mixin_payments SET planned = ?, fee = ? WHERE request_id = ? AND state = 'pending'",
                       (json.dumps(unsigned), json.dumps(list(fee)) if fee else None, p.request_id))
        reqs = await self.client.create_transaction_requests(unsigned)
        self._crash_at("verified", p.request_id)
        by_id: dict[str, TransactionRequest] = {r.request_id: r for r in reqs}
        if any(by_id[rid].state != "unspent" for rid, _ in plan):
            return None
        signed = []
        for rid, t in plan:
            r = by_id[rid]
            spend = self.client.keystore.spend_private_key
            if spend is None:
                raise LocalPaymentError("the keystore has no spend_private_key: it cannot pay")
            stx = kernel.sign(t, [bytes.fromhex(v) for v in r.views], spend.reveal())
            signed.append([rid, kernel.encode(stx).hex()])
        return signed

    async def _plan(self, p: Payment, fee_request_id: str) -> tuple[list[tuple[str, kernel.Transaction]],
                                                                     tuple[str, int] | None]:
        fee_asset, fee_units = (await self._pick_fee(p)) if p.kind == "withdrawal" else (p.asset_id, 0)
        recipients: list[tuple[str, int]] = [(p.opponent, p.units)]  # (user id or address, units)
        if fee_units and fee_asset == p.asset_id:
            recipients.append((FEE_USER_ID, fee_units))
        main = await self._transaction(p, p.request_id, p.asset_id, recipients, p.memo, ())
        plan = [(p.request_id, main)]
        if fee_units and fee_asset != p.asset_id:
            fee_tx = await self._transaction(p, fee_request_id, fee_asset, [(FEE_USER_ID, fee_units)], b"",
                                             (main.hash(),))
            plan.append((fee_request_id, fee_tx))
        return plan, ((fee_asset, fee_units) if p.kind == "withdrawal" else None)

    async def _transaction(self, p: Payment, request_id: str, asset_id: str, recipients: list[tuple[str, int]],
                           extra: bytes, references: tuple[bytes, ...]) -> kernel.Transaction:
        needed = sum(u for _, u in recipients)
        reserved = self._reserved_inputs(p.request_id)

        async def free() -> AsyncIterator[Output]:
            async for o in self.client.iter_outputs(asset=asset_id):
                if (o.transaction_hash, o.output_index) not in reserved:
                    yield o

        inputs, change = await select_outputs(free(), asset_id, needed)
        if change:
            recipients = [*recipients, (self.app_id, change)]
        is_withdrawal = [p.kind == "withdrawal" and n == 0 and request_id == p.request_id for n in range(len(recipients))]
        # Ghost-key hints are derived from the request id: a rebuild yields the same keys.
        wanted = [([who], n, unique_object_id(request_id, f"OUTPUT:{n}"))
                  for n, (who, _) in enumerate(recipients) if not is_withdrawal[n]]
        ghosts = iter(await self.client.ghost_keys(wanted) if wanted else [])
        outputs = []
        for n, (_who, units) in enumerate(recipients):
            if is_withdrawal[n]:
                outputs.append(kernel.Output(kernel.OUTPUT_WITHDRAWAL_SUBMIT, units,
                                             withdrawal=kernel.Withdrawal(p.opponent, p.tag)))
            else:
                g = next(ghosts)
                outputs.append(kernel.Output(kernel.OUTPUT_SCRIPT, units, tuple(bytes.fromhex(k) for k in g["keys"]),
                                             bytes.fromhex(g["mask"]), kernel.threshold_script(1)))
        return kernel.Transaction(
            asset=bytes.fromhex(kernel_asset_id(asset_id)),
            inputs=tuple(kernel.Input(bytes.fromhex(o.transaction_hash), o.output_index) for o in inputs),
            outputs=tuple(outputs),
            references=references,
            extra=extra,
        )

    # --- the journal ---------------------------------------------------------------------

    def _reserved_inputs(self, request_id: str) -> set[tuple[str, int]]:
        """Outputs our other unfinished payments spend (signed bytes, or the plan Mixin was asked
        to verify): a new payment must not take them, or those bytes could never be sent (e.g.
        after a crash, a new payment would otherwise run before the recovery of an old one)."""
        reserved: set[tuple[str, int]] = set()
        rows = self.store.query("SELECT request_id, state, raws, planned FROM mixin_payments "
                                "WHERE state IN ('pending', 'signed') AND request_id != ?", (request_id,))
        for _, state, raws, planned in rows:
            txs = raws if state == PaymentState.SIGNED else planned
            for _, raw in json.loads(txs or "[]"):
                reserved.update((i.hash.hex(), i.index) for i in kernel.decode(bytes.fromhex(raw)).inputs)
        return reserved

    def _get(self, request_id: str) -> Payment:
        p = self.payment(request_id)
        if p is None:
            raise KeyError(request_id)
        return p

    def _raws(self, request_id: str) -> str:
        return str(self.store.query("SELECT raws FROM mixin_payments WHERE request_id = ?", (request_id,))[0][0])

    def _advance(self, request_id: str, state: PaymentState, **fields: object) -> bool:
        """Moves the payment to `state` if it is in one of the states before it; False if another
        payer (or an earlier step) already moved it on."""
        cols = "".join(f", {k} = ?" for k in fields)
        before = _FROM[state]
        with self.store.transaction() as tx:
            return tx.execute(
                f"UPDATE mixin_payments SET state = ?{cols}, updated_at = ? WHERE request_id = ? "
                f"AND state IN ({', '.join('?' for _ in before)})",
                (state.value, *fields.values(), time.time_ns(), request_id, *(s.value for s in before))) == 1
