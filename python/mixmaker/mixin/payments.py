"""Transfers and withdrawals that pay exactly once, across retries, timeouts and crashes.

The request id is derived from the caller's own id (UniqueObjectId) and the intent is stored
before anything is sent. The signed transactions are stored before they are broadcast, so a
restart re-sends the very same bytes; Mixin answers a known request id with the existing
request, and the kernel never spends an output twice. An unclear outcome is resolved by reading
the request's state, never by building a new transaction. Spending is serialized per asset.

States: pending (intent stored) -> signed (raws stored) -> sent (Mixin has it) -> confirmed
(withdrawal hash on chain) | failed (Mixin refused it for good; nothing was paid, a new cause
is needed to try again). The per-asset lock is per process: one paying process per bot.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from mixmaker.mixin import kernel
from mixmaker.mixin.amounts import from_units, to_units
from mixmaker.mixin.client import MixinClient
from mixmaker.mixin.errors import LocalPaymentError, MixinApiError, MixinTransportError, NotFoundError
from mixmaker.mixin.ids import kernel_asset_id, parse_uuid, unique_object_id
from mixmaker.mixin.models import TransactionRequest
from mixmaker.mixin.utxo import select_outputs
from mixmaker.store import Store

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
]


class PaymentConflictError(LocalPaymentError):
    """The same cause was already used for a payment with other parameters."""


class PaymentFailedError(LocalPaymentError):
    """Mixin refused the payment for good; nothing was paid. `api_error` says why."""

    def __init__(self, request_id: str, api_error: MixinApiError) -> None:
        self.request_id, self.api_error = request_id, api_error
        super().__init__(f"payment {request_id} refused: {api_error}")


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
    state: str
    transaction_hash: str
    withdrawal_hash: str
    error: str

    @property
    def amount(self) -> Decimal:
        return from_units(self.units)


_COLUMNS = "request_id, cause, kind, asset_id, units, opponent, tag, memo, state, transaction_hash, withdrawal_hash, error"

# Steps at which a test may stop the process (see `crash_at`).
STEPS = ("recorded", "signed", "broadcast", "sent")
FINAL = ("sent", "confirmed", "failed")


class Payments:
    def __init__(self, client: MixinClient, store: Store, *, crash_at: Callable[[str, str], None] | None = None,
                 uncertain_retries: int = 5, uncertain_backoff_s: float = 0.5) -> None:
        self.client = client
        self.store = store
        self.app_id = client.keystore.app_id
        self._crash_at = crash_at or (lambda step, request_id: None)
        self._locks: dict[str, asyncio.Lock] = {}
        self.uncertain_retries = uncertain_retries
        self.uncertain_backoff_s = uncertain_backoff_s
        store.migrate("mixin_payments", MIGRATIONS)

    # --- public --------------------------------------------------------------------------

    async def transfer(self, cause: str, asset_id: str, amount: Decimal | str, opponent_id: str,
                       memo: bytes = b"") -> Payment:
        """Pays `amount` to a Mixin user once for this `cause` (e.g. "refund:<snapshot id>")."""
        opponent_id = parse_uuid(opponent_id, "opponent_id")
        if opponent_id == self.app_id:
            raise LocalPaymentError("a transfer to the bot itself")
        return await self._pay(cause, "transfer", asset_id, amount, opponent_id, "", memo)

    async def withdraw(self, cause: str, asset_id: str, amount: Decimal | str, destination: str, tag: str = "",
                       memo: bytes = b"") -> Payment:
        """Withdraws `amount` to a chain address once for this `cause`; the fee is paid on top."""
        if not destination or destination != destination.strip():
            raise LocalPaymentError(f"bad destination address {destination!r}")
        return await self._pay(cause, "withdrawal", asset_id, amount, destination, tag, memo)

    def payment(self, request_id: str) -> Payment | None:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM mixin_payments WHERE request_id = ?", (request_id,))
        return Payment(*rows[0]) if rows else None

    def unfinished(self) -> list[Payment]:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM mixin_payments WHERE state IN ('pending', 'signed') "
                                "ORDER BY created_at")
        return [Payment(*r) for r in rows]

    async def recover(self) -> list[Payment]:
        """At start-up: finish every payment a previous run left pending or signed."""
        return [await self._settle_locked(p) for p in self.unfinished()]

    async def refresh_withdrawal(self, request_id: str) -> Payment:
        """Reads the withdrawal's chain hash; the payment is `confirmed` once it is there."""
        p = self._get(request_id)
        if p.kind != "withdrawal" or p.state not in ("sent", "confirmed"):
            return p
        req = await self.client.transaction(request_id)
        hashes = [h for h in (req.withdrawal_hashes if req else ()) if h]
        if hashes:
            self._update(request_id, state="confirmed", withdrawal_hash=hashes[0])
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
        return await self._settle_locked(p)

    async def _settle_locked(self, p: Payment) -> Payment:
        if p.state in FINAL:
            return p
        # Outputs of an asset are spent by one payment at a time; a withdrawal whose fee is
        # in another asset also holds that asset (locks taken in a fixed order).
        fee_asset = await self._fee_asset(p) if p.kind == "withdrawal" else p.asset_id
        for a in sorted({p.asset_id, fee_asset}):
            self._locks.setdefault(a, asyncio.Lock())
        locks = [self._locks[a] for a in sorted({p.asset_id, fee_asset})]
        for lock in locks:
            await lock.acquire()
        try:
            return await self._settle(self._get(p.request_id))
        finally:
            for lock in reversed(locks):
                lock.release()

    async def _settle(self, p: Payment) -> Payment:
        if p.state in FINAL:
            return p
        if p.state == "pending":
            known = await self.client.transaction(p.request_id)
            if known is not None and known.state in ("signed", "spent"):
                # A previous run broadcast it and stopped before writing that down.
                self._update(p.request_id, state="sent", transaction_hash=known.transaction_hash)
                return self._get(p.request_id)
            try:
                signed = await self._build_and_sign(p)
            except MixinApiError as e:
                if e.retryable:
                    raise
                self._update(p.request_id, state="failed", error=str(e))
                raise PaymentFailedError(p.request_id, e) from None
            self._update(p.request_id, state="signed", raws=json.dumps(signed),
                         transaction_hash=kernel.decode(bytes.fromhex(signed[0][1])).hash().hex())
            self._crash_at("signed", p.request_id)
        return await self._send(self._get(p.request_id))

    async def _send(self, p: Payment) -> Payment:
        raws = [tuple(r) for r in json.loads(self._raws(p.request_id))]
        for attempt in range(self.uncertain_retries + 1):
            try:
                result = await self.client.broadcast(raws)
            except (MixinTransportError, MixinApiError) as e:
                if isinstance(e, MixinApiError) and not e.retryable:
                    # A definite refusal; but it may refuse because an earlier attempt went through.
                    if await self._already_sent(p.request_id):
                        break
                    if isinstance(e, NotFoundError) and attempt < self.uncertain_retries:
                        # Mixin no longer knows the request (it was never signed there): verify
                        # the same unsigned bytes again; the stored signatures still hold.
                        await self.client.create_transaction_requests(
                            [(rid, kernel.encode(kernel.decode(bytes.fromhex(raw)).unsigned()).hex()) for rid, raw in raws])
                        continue
                    self._update(p.request_id, state="failed", error=str(e))
                    raise PaymentFailedError(p.request_id, e) from None
                # No clear answer: ask before sending again (the same bytes, so never twice).
                if await self._already_sent(p.request_id):
                    break
                if attempt == self.uncertain_retries:
                    raise
                await asyncio.sleep(self.uncertain_backoff_s * 2**attempt)
                continue
            if result and result[0].state not in ("signed", "spent"):
                raise MixinTransportError(f"broadcast of {p.request_id} answered state {result[0].state!r}")
            self._crash_at("broadcast", p.request_id)
            break
        self._update(p.request_id, state="sent")
        self._crash_at("sent", p.request_id)
        return self._get(p.request_id)

    async def _already_sent(self, request_id: str) -> bool:
        known = await self.client.transaction(request_id)
        return known is not None and known.state in ("signed", "spent")

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

    async def _build_and_sign(self, p: Payment) -> list[list[str]]:
        """[[request_id, signed raw hex], ...]: the payment, then its fee transaction if separate."""
        fee_request_id = unique_object_id(p.request_id, "FEE")
        known = await self.client.transaction(p.request_id)
        if known is not None and known.state == "unspent":
            # Verified by Mixin in a previous run but never signed: sign exactly that raw, so the
            # request id keeps matching its content.
            plan = [(p.request_id, kernel.decode(bytes.fromhex(known.raw_transaction)))]
            fee_known = await self.client.transaction(fee_request_id)
            if fee_known is not None:
                plan.append((fee_request_id, kernel.decode(bytes.fromhex(fee_known.raw_transaction))))
        else:
            plan = await self._plan(p, fee_request_id)
        reqs = await self.client.create_transaction_requests([(rid, kernel.encode(t).hex()) for rid, t in plan])
        by_id: dict[str, TransactionRequest] = {r.request_id: r for r in reqs}
        signed = []
        for rid, t in plan:
            r = by_id[rid]
            if r.state != "unspent":
                raise LocalPaymentError(f"request {rid} is already {r.state}: read its state, do not sign again")
            spend = self.client.keystore.spend_private_key
            if spend is None:
                raise LocalPaymentError("the keystore has no spend_private_key: it cannot pay")
            stx = kernel.sign(t, [bytes.fromhex(v) for v in r.views], spend.reveal())
            signed.append([rid, kernel.encode(stx).hex()])
        return signed

    async def _plan(self, p: Payment, fee_request_id: str) -> list[tuple[str, kernel.Transaction]]:
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
        return plan

    async def _transaction(self, p: Payment, request_id: str, asset_id: str, recipients: list[tuple[str, int]],
                           extra: bytes, references: tuple[bytes, ...]) -> kernel.Transaction:
        needed = sum(u for _, u in recipients)
        inputs, change = await select_outputs(self.client.iter_outputs(asset=asset_id), asset_id, needed)
        if change:
            recipients = [*recipients, (self.app_id, change)]
        is_withdrawal = [p.kind == "withdrawal" and n == 0 and request_id == p.request_id for n in range(len(recipients))]
        # Ghost-key hints are derived from the request id: a rebuild yields the same keys.
        wanted = [([who], n, unique_object_id(request_id, f"OUTPUT:{n}"))
                  for n, (who, _) in enumerate(recipients) if not is_withdrawal[n]]
        ghosts = iter(await self.client.ghost_keys(wanted) if wanted else [])
        outputs = []
        for n, (who, units) in enumerate(recipients):
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

    def _get(self, request_id: str) -> Payment:
        p = self.payment(request_id)
        if p is None:
            raise KeyError(request_id)
        return p

    def _raws(self, request_id: str) -> str:
        return self.store.query("SELECT raws FROM mixin_payments WHERE request_id = ?", (request_id,))[0][0]

    def _update(self, request_id: str, **fields: object) -> None:
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.store.transaction() as tx:
            tx.execute(f"UPDATE mixin_payments SET {cols}, updated_at = ? WHERE request_id = ?",
                       (*fields.values(), time.time_ns(), request_id))
