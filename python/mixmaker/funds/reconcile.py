"""Reconciliation: the ledger against what Mixin and the exchanges really hold.

Per asset, the ledger's Mixin wallet against the bot's unspent outputs, and each exchange
account against its balances (free + locked), in ledger units (an exchange balance floored to
them: fees finer than a unit are booked at their ceiling, so the ledger is the venue's floor).

What is in flight is accounted for, never guessed at:
- a move planned but not sent yet is booked in transit while its source still holds it: added
  back to the source;
- an asset with a Mixin payment being signed or broadcast, or outputs locked by a transaction
  not final yet, is not compared this time (its outputs are moving): "skipped", not a difference;
- a move sent and not settled yet may land at any moment: credited at its destination (its
  expected net) or, failed at its source, given back there (what left), before the confirmation
  worker books it. Each such landing is a right answer too (an alternative), until the move
  settles; a difference that outlives it is caught as any other;
- fills the ledger has not booked yet are caught up first (`catch_up` per exchange account: the
  tracker's trade catch-up and fill outbox redelivery), and intake and the confirmation worker
  run before a check (the worker's job), so what remains is the world moving under our feet:
  new payments, fills a moment old.

A difference that is the same (account, asset, amount) at two checks in a row where that pair
was compared is not the world moving: it halts moves (`mixmaker.funds.halts`, trading goes on),
with an alert naming the account, the asset and the amount. Every check is stored
(`reconciliations`, `reconciliation_diffs`); `mixmaker status` shows the last.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mixmaker.funds import accounts as acc
from mixmaker.funds import alerts, halts
from mixmaker.funds.alerts import FundsAlert
from mixmaker.funds.assets import AssetMap
from mixmaker.funds.ledger import Ledger
from mixmaker.funds.mover import withdraw_client_ids
from mixmaker.funds.moves import NOT_BOOKED, Direction, MoveBook, MoveState
from mixmaker.funds.requests import RequestState
from mixmaker.mixin.payments import PaymentState
from mixmaker.money import Rounding, format_units, to_units
from mixmaker.store import Store

log = logging.getLogger("mixmaker.funds.reconcile")

MIGRATIONS = [
    """CREATE TABLE reconciliations (
        check_id TEXT PRIMARY KEY, started_ns BIGINT NOT NULL, finished_ns BIGINT NOT NULL, ok INTEGER NOT NULL,
        summary TEXT NOT NULL, detail TEXT NOT NULL)""",
    """CREATE TABLE reconciliation_diffs (
        check_id TEXT NOT NULL, account TEXT NOT NULL, asset TEXT NOT NULL, ledger_units BIGINT NOT NULL,
        actual_units BIGINT NOT NULL, diff_units BIGINT NOT NULL, skipped TEXT NOT NULL, at_ns BIGINT NOT NULL,
        PRIMARY KEY (check_id, account, asset))""",
    "CREATE INDEX reconciliation_diffs_by_pair ON reconciliation_diffs (account, asset, at_ns)",
]

CatchUp = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Line:
    account: str  # ledger account name: wallet:mixin, exchange:binance
    asset: str
    ledger_units: int  # what the ledger says the account holds, with what is in flight added back
    actual_units: int  # what the venue holds
    skipped: str = ""  # why it was not compared this time ("" when it was)
    # Other holdings that would be right too: a move in doubt may or may not have left the venue.
    alternatives: tuple[int, ...] = ()

    @property
    def diff(self) -> int:
        if self.skipped or self.actual_units in self.alternatives:
            return 0
        return self.actual_units - self.ledger_units


@dataclass
class Check:
    check_id: str
    lines: list[Line] = field(default_factory=list)
    halted: list[Line] = field(default_factory=list)  # differences seen twice: moves halted for them
    errors: list[str] = field(default_factory=list)  # venues that did not answer (not compared)

    @property
    def differences(self) -> list[Line]:
        return [ln for ln in self.lines if ln.diff]

    @property
    def ok(self) -> bool:
        return not self.differences and not self.errors


class Reconciler:
    def __init__(self, store: Store, ledger: Ledger, assets: AssetMap, moves: MoveBook, mixin: Any,
                 venues: Mapping[str, Any], *, catch_up: Mapping[str, CatchUp] | None = None,
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        """`mixin`: the bot's MixinClient; `venues`: exchange account name -> VenueAccount;
        `catch_up`: per exchange account, books the fills not in the ledger yet."""
        self.store, self.ledger, self.assets, self.moves = store, ledger, assets, moves
        self.mixin = mixin
        self.venues = dict(venues)
        self.catch_up = dict(catch_up or {})
        self.now_ns = now_ns
        store.migrate("reconciliations", MIGRATIONS)
        alerts.migrate(store)
        halts.migrate(store)

    async def check(self) -> Check:
        started = self.now_ns()
        c = Check(f"rc-{started}")
        for name, fn in sorted(self.catch_up.items()):
            try:
                await fn()
            except Exception as e:  # noqa: BLE001 - that account is not compared this time
                c.errors.append(f"{name}: fills not caught up: {type(e).__name__}: {e}")
        await self._mixin(c)
        for name in sorted(self.venues):
            if any(e.startswith(f"{name}:") for e in c.errors):
                continue
            await self._exchange(c, name)
        self._store(c, started)
        return c

    # --- the sides --------------------------------------------------------------------------------

    async def _mixin(self, c: Check) -> None:
        try:
            unfinished = self.store.query("SELECT DISTINCT asset_id FROM mixin_payments WHERE state IN (?, ?)",
                                          (PaymentState.PENDING.value, PaymentState.SIGNED.value)) \
                if self._has("mixin_payments") else []
        except Exception:  # noqa: BLE001
            unfinished = []
        busy = {r[0].lower() for r in unfinished}
        add_back = self._unsent(Direction.TO_EXCHANGE)
        landing = self._landing(None)
        for spec in self.assets:
            account = acc.WALLET
            try:
                outputs = [o async for o in self.mixin.iter_outputs(asset=spec.mixin_asset_id)]
                locked = await self.mixin.outputs(asset=spec.mixin_asset_id, state="signed", limit=1)
            except Exception as e:  # noqa: BLE001
                c.errors.append(f"mixin: outputs of {spec.symbol}: {type(e).__name__}: {e}")
                continue
            actual = spec.from_mixin(sum(o.units for o in outputs))
            expected = self.ledger.balance(account, spec.symbol) + add_back.get(spec.symbol, 0)
            skipped = ""
            if spec.mixin_asset_id in busy:
                skipped = "a payment of it is being signed or sent"
            elif locked:
                skipped = "outputs locked by a transaction not final yet"
            c.lines.append(Line(account.name, spec.symbol, expected, actual, skipped,
                                alternatives=_alternatives(expected, landing.get(spec.symbol, []))))

    async def _exchange(self, c: Check, name: str) -> None:
        venue = self.venues[name]
        try:
            balances = await venue.fetch_balances()
        except Exception as e:  # noqa: BLE001
            c.errors.append(f"{name}: balances: {type(e).__name__}: {e}")
            return
        account = acc.exchange(name)
        add_back, doubt = await self._unsent_exchange(name, venue)
        landing = self._landing(name)
        for spec in self.assets:
            va = spec.venues.get(name)
            if va is None:
                continue
            b = balances.get(va.currency)
            total = b.total if b is not None else 0
            actual = to_units(total, spec.decimals, rounding=Rounding.FLOOR)
            expected = self.ledger.balance(account, spec.symbol) + add_back.get(spec.symbol, 0)
            # Each move in doubt may have left (or not), each sent one may have landed (or not):
            # every combination is a right answer.
            c.lines.append(Line(account.name, spec.symbol, expected, actual,
                                alternatives=_alternatives(expected, doubt.get(spec.symbol, []) +
                                                           landing.get(spec.symbol, []))))

    def _landing(self, exchange: str | None) -> dict[str, list[int]]:
        """Per asset, what sent moves not settled yet may add to exchange account `exchange` (None:
        the Mixin wallet) before the confirmation worker books it: a credit at the destination
        (the move's expected net), or what left given back by a source that failed it."""
        out: dict[str, list[int]] = {}
        for m in self.moves.in_flight():
            if not m.sent_ns:
                continue  # unsent: still at its source, added back there (`_unsent`)
            to_here = (m.direction is Direction.TO_EXCHANGE) == (exchange is not None)
            if exchange is not None and m.venue_account != exchange:
                continue
            out.setdefault(m.asset, []).append(m.expected_net if to_here else m.units)
        return out

    def _unsent(self, direction: Direction, account: str | None = None) -> dict[str, int]:
        """What moves planned (booked in transit) but not sent hold back at their source."""
        out: dict[str, int] = {}
        for m in self.moves.in_flight():
            if m.direction is not direction or m.sent_ns or (account is not None and m.venue_account != account):
                continue
            if direction is Direction.TO_EXCHANGE and self._payment_sent(m.source_ref):
                continue  # Mixin has it: the outputs are spent (a crash before it was recorded)
            out[m.asset] = out.get(m.asset, 0) + m.units
            if direction is Direction.TO_EXCHANGE and m.fee_asset != m.asset and m.fee_units == NOT_BOOKED:
                out[m.fee_asset] = out.get(m.fee_asset, 0) + m.fee_est
        return out

    async def _unsent_exchange(self, name: str, venue: Any) -> tuple[dict[str, int], dict[str, list[int]]]:
        """(what unsent moves hold back at the venue, the amounts of moves in doubt)."""
        out: dict[str, int] = {}
        doubt: dict[str, list[int]] = {}
        for m in self.moves.in_flight():
            if m.direction is not Direction.TO_MIXIN or m.venue_account != name or m.sent_ns or m.exchange_id:
                continue
            if withdraw_client_ids(venue):
                currency = self.assets.symbol(m.asset).venues[name].currency
                if await venue.find_withdrawal(currency, m.source_ref) is not None:
                    continue  # the venue has it (a crash before it was recorded)
            elif m.send_started_ns:
                doubt.setdefault(m.asset, []).append(m.units)  # in doubt: it may have left, or not
                continue
            out[m.asset] = out.get(m.asset, 0) + m.units
        return out, doubt

    def _payment_sent(self, request_id: str) -> bool:
        if not self._has("mixin_payments"):
            return False
        rows = self.store.query("SELECT state FROM mixin_payments WHERE request_id = ?", (request_id,))
        return bool(rows) and rows[0][0] in (PaymentState.SENT, PaymentState.CONFIRMED)

    def _has(self, table: str) -> bool:
        try:
            self.store.query(f"SELECT 1 FROM {table} LIMIT 1")
        except Exception:  # noqa: BLE001
            return False
        return True

    # --- storing, and the halt ------------------------------------------------------------------

    def _store(self, c: Check, started: int) -> None:
        now = self.now_ns()
        diffs = c.differences
        summary = ("ok" if c.ok else "; ".join(
            [f"{ln.account} {ln.asset}: ledger {self._fmt(ln.asset, ln.ledger_units)}, venue "
             f"{self._fmt(ln.asset, ln.actual_units)} ({'+' if ln.diff > 0 else ''}{self._fmt(ln.asset, ln.diff)})"
             for ln in diffs] + c.errors))
        with self.store.transaction() as tx:
            for ln in c.lines:
                prev = tx.query("SELECT diff_units FROM reconciliation_diffs WHERE account = ? AND asset = ? AND "
                                "skipped = '' ORDER BY at_ns DESC LIMIT 1", (ln.account, ln.asset))
                tx.execute("INSERT INTO reconciliation_diffs (check_id, account, asset, ledger_units, actual_units, "
                           "diff_units, skipped, at_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (c.check_id, ln.account, ln.asset, ln.ledger_units, ln.actual_units, ln.diff, ln.skipped, now))
                if ln.skipped or not ln.diff or not prev or prev[0][0] != ln.diff:
                    continue
                msg = (f"{ln.account} {ln.asset}: the ledger says {self._fmt(ln.asset, ln.ledger_units)}, the venue "
                       f"holds {self._fmt(ln.asset, ln.actual_units)}: a difference of {self._fmt(ln.asset, ln.diff)} "
                       "at two checks in a row; moves and withdrawals halt until an operator clears it")
                if halts.raise_halt(tx, halts.HaltKind.RECONCILIATION, ln.account, ln.asset, ln.diff, msg,
                                    {"ledger": ln.ledger_units, "actual": ln.actual_units, "check": c.check_id}):
                    alerts.alert(tx, FundsAlert.RECONCILIATION, f"{ln.account}:{ln.asset}:{c.check_id}", msg)
                c.halted.append(ln)
            tx.execute("INSERT INTO reconciliations (check_id, started_ns, finished_ns, ok, summary, detail) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (c.check_id, started, now, int(c.ok), summary,
                        json.dumps({"lines": [[ln.account, ln.asset, ln.ledger_units, ln.actual_units, ln.skipped]
                                              for ln in c.lines], "errors": c.errors})))
        if not c.ok:
            log.warning("reconciliation %s: %s", c.check_id, summary, extra={"event": "reconciliation_differences"})

    def _fmt(self, asset: str, units: int) -> str:
        try:
            return format_units(units, self.ledger.decimals(asset))
        except Exception:  # noqa: BLE001
            return str(units)


# Past this many moves landing on one line, the combinations are not listed (a check then counts
# only the exact figure, as before moves were in flight).
_MAX_LANDING = 10


def _alternatives(expected: int, amounts: list[int]) -> tuple[int, ...]:
    """Every `expected` plus a sub-sum of `amounts` (each may have happened or not); () for none."""
    if not amounts or len(amounts) > _MAX_LANDING:
        return ()
    sums = {expected}
    for u in amounts:
        sums |= {a + u for a in sums}
    return tuple(sorted(sums))


def last_check(store: Store) -> tuple[int, bool, str] | None:
    """(finished_ns, ok, summary) of the last check, or None."""
    rows = store.query("SELECT finished_ns, ok, summary FROM reconciliations ORDER BY finished_ns DESC LIMIT 1")
    return (int(rows[0][0]), bool(rows[0][1]), rows[0][2]) if rows else None


def transit_problems(ledger: Ledger, moves: MoveBook) -> list[str]:
    """Moves whose transit account in the ledger does not hold what their state says it must."""
    problems = []
    for m in moves.all():
        held = ledger.holdings_of(m.transit)
        want: dict[str, int] = {}
        if m.state is not MoveState.FAILED:
            fee_booked = m.fee_units != NOT_BOOKED
            arrived = m.arrived_units if m.arrived_units != NOT_BOOKED else 0
            if m.direction is Direction.TO_EXCHANGE:
                if fee_booked:
                    want[m.asset] = m.send_units - arrived
                else:
                    want[m.asset] = m.units - arrived
                    if m.fee_asset != m.asset:
                        want[m.fee_asset] = want.get(m.fee_asset, 0) + m.fee_est
            else:
                want[m.asset] = m.units - (m.fee_units if fee_booked else 0) - arrived
        want = {a: u for a, u in want.items() if u}
        if held != want and not (m.state is MoveState.FAILED and held == {}):
            problems.append(f"transit:{m.move_id} ({m.state.value}) holds {held}, its state says {want}")
    return problems


def request_problems(store: Store, requests: Any, moves: MoveBook) -> list[str]:
    """User orders' requests whose state disagrees with their move's: a request in a move that is
    not there, or that ended without the request being settled."""
    problems = []
    for r in requests.unsettled():
        if r.state is not RequestState.MOVING:
            continue
        m = moves.get(store, r.move_id)
        if m is None:
            problems.append(f"request:{r.part_key} is in move {r.move_id}, which does not exist")
        elif m.state.terminal:
            problems.append(f"request:{r.part_key} is still moving, its move {m.move_id} is {m.state.value}")
    return problems
