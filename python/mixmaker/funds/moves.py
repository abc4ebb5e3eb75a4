"""Moves: funds in motion between the bot's Mixin wallet and an exchange account.

A move carries one asset one way, for one or several PARTS (the allocations of user orders it
batches). It is planned and stored, with its ledger posting (source -> `transit:<move id>`),
under a deterministic id BEFORE anything is sent, then followed to its end:

    PLANNED --SENT--> SENT --SEEN--> SEEN --CREDITED--> ARRIVED
       |                |              |
       +--REFUSED / REVERSED--> FAILED (reversed in the ledger; retried as `<id>.r<n>` when safe)
       +--LATE / DOUBT------> STUCK  (alerted; still followed: a later signal moves it on)

Every (state, event) pair is decided in ONE grid (`_GRID`), with no default: an event a state
refuses is a bug (or a venue saying something impossible) and raises `MoveTransitionError`.

Ledger, per move id (all keyed, so a repeat after a crash changes nothing):
- `move-sent:<id>`     source -> transit: what leaves the source (and a network-fee estimate)
- `move-fee:<id>`      the fee actually paid, out of transit, to the claims that caused the move
                       (pro rata to their parts; a fee in another asset than the one moved is the
                       bot's: `bot:fees`), and the estimate's difference back to the source
- `move-arrived:<id>`  transit -> destination: what the destination credited
- `move-reversed:<id>` transit -> source: what came back of a move that failed

Mixin -> exchange: a Safe withdrawal (`Payments.withdraw`, cause `move:<id>`) of the amount less a
same-asset fee; the fee is paid on top, so the whole withdrawal arrives. Exchange -> Mixin: an
exchange withdrawal of the amount; the exchange takes its fee out of it, so less arrives.
"""

from __future__ import annotations

import enum
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Account, Entry, Flow
from mixmaker.funds.errors import FundsError
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.store import Store
from mixmaker.store.base import Transaction


class MoveError(FundsError):
    """A move asked for what cannot be (other amounts under a known key, an unknown move...)."""


class MoveTransitionError(MoveError):
    """An event the move's state refuses."""


class Direction(enum.Enum):
    TO_EXCHANGE = "to_exchange"  # Mixin wallet -> an exchange account
    TO_MIXIN = "to_mixin"  # an exchange account -> the Mixin wallet

    @property
    def side(self) -> str:
        return "mixin->exchange" if self is Direction.TO_EXCHANGE else "exchange->mixin"


class MoveState(enum.Enum):
    PLANNED = "planned"  # stored and booked in transit; the source may not have it yet
    SENT = "sent"  # the source venue has the withdrawal
    SEEN = "seen"  # on chain: its hash is known
    ARRIVED = "arrived"  # credited at the destination (booked)
    FAILED = "failed"  # refused or failed at the source; what came back is booked back
    STUCK = "stuck"  # past its expected time, or in doubt: alerted, still followed

    @property
    def terminal(self) -> bool:
        return self in (MoveState.ARRIVED, MoveState.FAILED)


class MoveEvent(enum.Enum):
    SENT = "sent"  # the source venue has it (Mixin: the payment is sent; exchange: its withdrawal id)
    REFUSED = "refused"  # the source refused it for good before anything left
    SEEN = "seen"  # its hash is on chain
    CREDITED = "credited"  # the destination credited it
    REVERSED = "reversed"  # the source reports it failed or rejected, and the money is back there
    LATE = "late"  # past its expected time
    DOUBT = "doubt"  # unclear whether the source has it, and no way to find it: never resent


_S, _E = MoveState, MoveEvent
_ABBR = {"PLANNED": _S.PLANNED, "SENT": _S.SENT, "SEEN": _S.SEEN, "ARRIVED": _S.ARRIVED, "FAILED": _S.FAILED,
         "STUCK": _S.STUCK}
_COLUMNS = [_E.SENT, _E.REFUSED, _E.SEEN, _E.CREDITED, _E.REVERSED, _E.LATE, _E.DOUBT]
# `=`: accepted, the state stays; `-`: refused (MoveTransitionError). A failure reported once a
# hash is on chain is refused: an operator must look, nothing is reversed on such a word.
_GRID = """
          SENT     REFUSED  SEEN     CREDITED REVERSED LATE     DOUBT
PLANNED   SENT     FAILED   SEEN     ARRIVED  FAILED   STUCK    STUCK
SENT      =        -        SEEN     ARRIVED  FAILED   STUCK    -
SEEN      =        -        =        ARRIVED  -        STUCK    -
STUCK     SENT     FAILED   SEEN     ARRIVED  FAILED   =        =
ARRIVED   =        -        =        =        -        -        -
FAILED    -        =        -        -        =        -        -
"""


def _parse_grid(text: str) -> dict[tuple[MoveState, MoveEvent], MoveState | None]:
    rows = [line.split() for line in text.strip().splitlines()]
    if len(rows[0]) != len(_COLUMNS) or [c.name for c in _COLUMNS] != rows[0]:
        raise AssertionError(f"the move grid's columns are {rows[0]}, not the events {[c.name for c in _COLUMNS]}")
    table: dict[tuple[MoveState, MoveEvent], MoveState | None] = {}
    for row in rows[1:]:
        if len(row) != len(_COLUMNS) + 1:
            raise AssertionError(f"move grid row {row[0]} has {len(row) - 1} cells, not {len(_COLUMNS)}")
        for event, cell in zip(_COLUMNS, row[1:], strict=True):
            state = _ABBR[row[0]]  # "=": it stays in its state, "-": refused
            table[(state, event)] = state if cell == "=" else None if cell == "-" else _ABBR[cell]
    missing = {(s, e) for s in MoveState for e in MoveEvent} - set(table)
    if missing or set(_COLUMNS) != set(MoveEvent):
        raise AssertionError(f"the move grid does not decide {sorted((s.name, e.name) for s, e in missing)}")
    return table


_TABLE = _parse_grid(_GRID)


def next_state(state: MoveState, event: MoveEvent) -> MoveState | None:
    """The state after `event`, or None when `state` refuses it."""
    return _TABLE[(state, event)]


# --- ids ---------------------------------------------------------------------------------------

def move_id(direction: Direction, venue_account: str, asset: str, part_keys: Iterable[str]) -> str:
    """The id of the first attempt of a move carrying these parts: the same parts, the same id."""
    h = hashlib.sha256("|".join([direction.value, venue_account, asset, *sorted(part_keys)]).encode()).hexdigest()
    return f"mv-{h[:24]}"


def retry_id(mid: str, attempt: int) -> str:
    """The id of attempt `attempt` (1, 2, ...) of move `mid`'s root."""
    return f"{root_of(mid)}.r{attempt}"


def root_of(mid: str) -> str:
    return mid.partition(".")[0]


def payment_cause(mid: str) -> str:
    """The `Payments` cause of a Mixin -> exchange move (its request id derives from it)."""
    return f"move:{mid}"


def withdraw_client_id(mid: str) -> str:
    """An exchange withdrawal's client id (Binance `withdrawOrderId`): 32 characters."""
    return "mm" + hashlib.sha256(mid.encode()).hexdigest()[:30]


def split_fee(total: int, parts: Sequence[tuple[str, int]]) -> dict[str, int]:
    """`total` units shared pro rata to the parts' units, exactly: floors, then the units left go
    one each to the largest remainders (ties: the part key's order)."""
    units = sum(u for _, u in parts)
    if total == 0 or not parts:
        return {k: 0 for k, _ in parts}
    if units <= 0:
        raise MoveError("a fee cannot be shared among parts of no units")
    shares = {k: total * u // units for k, u in parts}
    left = total - sum(shares.values())
    by_rest = sorted(parts, key=lambda p: (-(total * p[1] % units), p[0]))
    for k, _ in by_rest[:left]:
        shares[k] += 1
    return shares


# --- the durable moves -------------------------------------------------------------------------

MIGRATIONS = [
    """CREATE TABLE funds_moves (
        move_id TEXT PRIMARY KEY, direction TEXT NOT NULL, venue_account TEXT NOT NULL, asset TEXT NOT NULL,
        units BIGINT NOT NULL, send_units BIGINT NOT NULL, fee_asset TEXT NOT NULL, fee_est BIGINT NOT NULL,
        fee_units BIGINT NOT NULL, arrived_units BIGINT NOT NULL, network TEXT NOT NULL, address TEXT NOT NULL,
        tag TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL, source_ref TEXT NOT NULL,
        fee_ref TEXT NOT NULL, exchange_id TEXT NOT NULL, tx_hash TEXT NOT NULL, send_started_ns BIGINT NOT NULL,
        sent_ns BIGINT NOT NULL, planned_ns BIGINT NOT NULL, stage_ns BIGINT NOT NULL, deadline_ns BIGINT NOT NULL,
        last_signal TEXT NOT NULL, error TEXT NOT NULL, seq INTEGER NOT NULL, updated_ns BIGINT NOT NULL)""",
    "CREATE INDEX funds_moves_by_state ON funds_moves (state)",
    "CREATE INDEX funds_moves_by_hash ON funds_moves (tx_hash)",
    "CREATE INDEX funds_moves_by_source ON funds_moves (source_ref)",
    """CREATE TABLE funds_move_parts (
        move_id TEXT NOT NULL, part_key TEXT NOT NULL, claim TEXT NOT NULL, units BIGINT NOT NULL,
        PRIMARY KEY (move_id, part_key))""",
    """CREATE TABLE funds_move_events (
        move_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, from_state TEXT NOT NULL,
        to_state TEXT NOT NULL, at_ns BIGINT NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (move_id, seq))""",
]

_MOVE_COLUMNS = ("move_id, direction, venue_account, asset, units, send_units, fee_asset, fee_est, fee_units, "
                 "arrived_units, network, address, tag, state, attempt, source_ref, fee_ref, exchange_id, tx_hash, "
                 "send_started_ns, sent_ns, planned_ns, stage_ns, deadline_ns, last_signal, error, seq")
NOT_BOOKED = -1  # fee_units / arrived_units before they are known


@dataclass(frozen=True, slots=True)
class Part:
    key: str  # the allocation that put these units in the move ("<order id>|to_exchange|BTC")
    claim: Account  # whose money it is: the fee share is charged here
    units: int


@dataclass(frozen=True, slots=True)
class Move:
    move_id: str
    direction: Direction
    venue_account: str
    asset: str  # ledger symbol
    units: int  # what leaves the source
    send_units: int  # the amount the withdrawal asks for
    fee_asset: str  # ledger symbol of the fee
    fee_est: int  # the fee estimated at planning
    fee_units: int  # the fee actually paid (NOT_BOOKED until known)
    arrived_units: int  # what the destination credited (NOT_BOOKED until then)
    network: str
    address: str
    tag: str
    state: MoveState
    attempt: int
    source_ref: str  # Mixin request id, or the exchange withdrawal's client id
    fee_ref: str  # Mixin: the separate fee transaction's request id ("" if none)
    exchange_id: str  # the exchange's withdrawal id, once known
    tx_hash: str
    send_started_ns: int
    sent_ns: int
    planned_ns: int
    stage_ns: int
    deadline_ns: int
    last_signal: str
    error: str
    seq: int

    @property
    def source(self) -> Account:
        return acc.WALLET if self.direction is Direction.TO_EXCHANGE else acc.exchange(self.venue_account)

    @property
    def destination(self) -> Account:
        return acc.exchange(self.venue_account) if self.direction is Direction.TO_EXCHANGE else acc.WALLET

    @property
    def transit(self) -> Account:
        return acc.transit(self.move_id)

    @property
    def expected_net(self) -> int:
        """What should arrive: the whole withdrawal from Mixin; less the exchange's fee from an exchange."""
        if self.direction is Direction.TO_EXCHANGE:
            return self.send_units
        fee = self.fee_units if self.fee_units != NOT_BOOKED else self.fee_est
        return self.send_units - fee


def _move(r: tuple[Any, ...]) -> Move:
    v = list(r)
    v[1] = Direction(v[1])
    v[13] = MoveState(v[13])
    return Move(*v)


@dataclass(frozen=True, slots=True)
class Timing:
    """How long each stage may take before the move is STUCK (seconds)."""

    to_send_s: float = 600.0  # planned -> the source has it
    to_chain_s: float = 3600.0  # sent -> its hash on chain
    to_credit_s: float = 3600.0  # on chain -> credited

    def of(self, state: MoveState) -> float | None:
        return {MoveState.PLANNED: self.to_send_s, MoveState.SENT: self.to_chain_s,
                MoveState.SEEN: self.to_credit_s}.get(state)


class MoveBook:
    """The durable moves and their ledger postings. Every write takes the caller's store
    transaction, so a move's state, its parts and its money commit together."""

    def __init__(self, store: Store, ledger: Ledger, timing: Timing | None = None) -> None:
        self.store, self.ledger = store, ledger
        self.timing = timing or Timing()
        store.migrate("funds_moves", MIGRATIONS)

    # --- reading ----------------------------------------------------------------------------

    def get(self, q: Store | Transaction, mid: str) -> Move | None:
        rows = q.query(f"SELECT {_MOVE_COLUMNS} FROM funds_moves WHERE move_id = ?", (mid,))
        return _move(rows[0]) if rows else None

    def move(self, mid: str, q: Store | Transaction | None = None) -> Move:
        m = self.get(q or self.store, mid)
        if m is None:
            raise MoveError(f"no move {mid}")
        return m

    def in_flight(self, q: Store | Transaction | None = None) -> list[Move]:
        rows = (q or self.store).query(f"SELECT {_MOVE_COLUMNS} FROM funds_moves WHERE state NOT IN (?, ?) "
                                       "ORDER BY planned_ns, move_id", (MoveState.ARRIVED.value, MoveState.FAILED.value))
        return [_move(r) for r in rows]

    def all(self) -> list[Move]:
        return [_move(r) for r in self.store.query(f"SELECT {_MOVE_COLUMNS} FROM funds_moves ORDER BY planned_ns, move_id")]

    def parts(self, q: Store | Transaction, mid: str) -> list[Part]:
        rows = q.query("SELECT part_key, claim, units FROM funds_move_parts WHERE move_id = ? ORDER BY part_key", (mid,))
        return [Part(k, Account.parse(c), int(u)) for k, c, u in rows]

    def by_hash(self, q: Store | Transaction, direction: Direction, tx_hash: str) -> Move | None:
        if not tx_hash:
            return None
        rows = q.query(f"SELECT {_MOVE_COLUMNS} FROM funds_moves WHERE tx_hash = ? AND direction = ?",
                       (tx_hash, direction.value))
        return _move(rows[0]) if rows else None

    def by_source_ref(self, q: Store | Transaction, ref: str) -> Move | None:
        rows = q.query(f"SELECT {_MOVE_COLUMNS} FROM funds_moves WHERE source_ref = ?", (ref,))
        return _move(rows[0]) if rows else None

    def by_fee_ref(self, q: Store | Transaction, ref: str) -> Move | None:
        if not ref:
            return None
        rows = q.query(f"SELECT {_MOVE_COLUMNS} FROM funds_moves WHERE fee_ref = ?", (ref,))
        return _move(rows[0]) if rows else None

    def events(self, mid: str) -> list[tuple[str, str, str]]:
        """(event, from state, to state), in order."""
        return [(str(r[0]), str(r[1]), str(r[2])) for r in self.store.query(
            "SELECT event, from_state, to_state FROM funds_move_events WHERE move_id = ? ORDER BY seq", (mid,))]

    # --- writing ----------------------------------------------------------------------------

    def plan(self, tx: Transaction, *, mid: str, direction: Direction, venue_account: str, asset: str,
             parts: Sequence[Part], send_units: int, fee_asset: str, fee_est: int, network: str, address: str,
             tag: str, source_ref: str, fee_ref: str = "", attempt: int = 0) -> Move:
        """Stores a new move with its parts and books what leaves the source into transit (the
        amount, and a Mixin fee estimate). Idempotent: planning a stored id again returns it."""
        known = self.get(tx, mid)
        if known is not None:
            return known
        units = sum(p.units for p in parts)
        if units <= 0 or send_units <= 0 or send_units > units:
            raise MoveError(f"move {mid}: {units} units out, {send_units} to send: nothing sensible to move")
        now = time.time_ns()
        deadline = now + int(self.timing.to_send_s * 1e9)
        tx.execute(f"INSERT INTO funds_moves ({_MOVE_COLUMNS}, updated_ns) VALUES "
                   f"({', '.join('?' for _ in range(28))})",
                   (mid, direction.value, venue_account, asset, units, send_units, fee_asset, fee_est, NOT_BOOKED,
                    NOT_BOOKED, network, address, tag, MoveState.PLANNED.value, attempt, source_ref, fee_ref, "", "",
                    0, 0, now, now, deadline, "planned", "", 1, now))
        for p in parts:
            tx.execute("INSERT INTO funds_move_parts (move_id, part_key, claim, units) VALUES (?, ?, ?, ?)",
                       (mid, p.key, p.claim.name, p.units))
        tx.execute("INSERT INTO funds_move_events (move_id, seq, event, from_state, to_state, at_ns, detail) "
                   "VALUES (?, 1, 'planned', '', ?, ?, ?)",
                   (mid, MoveState.PLANNED.value, now, json.dumps({"parts": [(p.key, p.units) for p in parts]})))
        m = self.move(mid, tx)
        entries: list[Entry] = [*acc.transfer(Flow.MOVE, asset, units, m.source, m.transit)]
        if direction is Direction.TO_EXCHANGE and fee_asset != asset and fee_est:
            entries += acc.transfer(Flow.MOVE, fee_asset, fee_est, m.source, m.transit)
        self.ledger.post(tx, tx_key(Cause.MOVE_SENT, mid), entries, ref=mid,
                         detail={"direction": direction.value, "account": venue_account, "address": address,
                                 "parts": {p.key: p.units for p in parts}})
        return m

    def fire(self, tx: Transaction, mid: str, event: MoveEvent, signal: str, *, detail: dict[str, object] | None = None,
             **fields: object) -> Move:
        """Applies `event` durably in `tx`, with `fields` (tx_hash, exchange_id, sent_ns...).
        Raises MoveTransitionError if the state refuses it. A new stage restarts the clock."""
        m = self.move(mid, tx)
        nxt = next_state(m.state, event)
        if nxt is None:
            raise MoveTransitionError(f"move {mid} is {m.state.value}: it does not accept {event.value} ({signal})")
        now = time.time_ns()
        sets = dict(fields)
        sets["last_signal"] = signal
        if nxt is not m.state:
            sets["state"] = nxt.value
            if nxt is not MoveState.STUCK:
                sets["stage_ns"] = now
                expected = self.timing.of(nxt)
                sets["deadline_ns"] = now + int(expected * 1e9) if expected is not None else 0
        cols = ", ".join(f"{k} = ?" for k in sets)
        n = tx.execute(f"UPDATE funds_moves SET {cols}, seq = seq + 1, updated_ns = ? WHERE move_id = ? AND seq = ?",
                       (*sets.values(), now, mid, m.seq))
        if n != 1:
            raise MoveError(f"move {mid} changed under us (seq {m.seq})")
        tx.execute("INSERT INTO funds_move_events (move_id, seq, event, from_state, to_state, at_ns, detail) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (mid, m.seq + 1, event.value, m.state.value, nxt.value, now,
                                                    json.dumps({"signal": signal, **(detail or {})}, default=str)))
        return self.move(mid, tx)

    def record_sent(self, tx: Transaction, mid: str, signal: str, sent_ns: int, *, exchange_id: str = "") -> None:
        """The source has the withdrawal: SENT from PLANNED or STUCK; a move that got past SENT
        some other way (a signal of a later stage came first) only learns when. Once only."""
        m = self.move(mid, tx)
        if m.sent_ns:
            return
        if m.state in (MoveState.PLANNED, MoveState.STUCK):
            self.fire(tx, mid, MoveEvent.SENT, signal, sent_ns=sent_ns, error="", exchange_id=exchange_id or m.exchange_id)
        else:
            self.note(tx, mid, sent_ns=sent_ns, exchange_id=exchange_id or m.exchange_id)

    def note(self, tx: Transaction, mid: str, **fields: object) -> None:
        """Updates fields that are not a transition (send_started_ns, last_signal, error)."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        tx.execute(f"UPDATE funds_moves SET {cols}, updated_ns = ? WHERE move_id = ?", (*fields.values(), time.time_ns(), mid))

    # --- money --------------------------------------------------------------------------------

    def book_fee(self, tx: Transaction, mid: str, fee_asset: str, fee_units: int) -> bool:
        """The fee actually paid, out of transit, to whoever caused the move: its parts pro rata
        when it is in the moved asset, else the bot's fee float. A Mixin fee estimate that differs
        goes back to (or comes from) the wallet. False if booked before."""
        m = self.move(mid, tx)
        if m.fee_units != NOT_BOOKED:
            return False
        if fee_units < 0:
            raise MoveError(f"move {mid}: a negative fee {fee_units}")
        flow = Flow.FEE_NETWORK if m.direction is Direction.TO_EXCHANGE else Flow.FEE_WITHDRAWAL
        entries: list[Entry] = []
        if m.direction is Direction.TO_EXCHANGE and m.fee_est:
            # The estimate went to transit at planning: it comes back; the real fee goes in.
            entries += acc.transfer(Flow.MOVE, m.fee_asset, m.fee_est, m.transit, m.source)
        if fee_units and m.direction is Direction.TO_EXCHANGE:
            entries += acc.transfer(Flow.MOVE, fee_asset, fee_units, m.source, m.transit)
        parts = self.parts(tx, mid)
        charged: dict[str, int] = {}
        if fee_asset == m.asset:
            shares = split_fee(fee_units, [(p.key, p.units) for p in parts])
            for p in parts:
                entries += acc.outflow(flow, fee_asset, shares[p.key], m.transit, p.claim)
                charged[p.key] = shares[p.key]
        else:
            entries += acc.outflow(flow, fee_asset, fee_units, m.transit, acc.BOT_FEES)
            charged[acc.BOT_FEES.name] = fee_units
        self.ledger.post(tx, tx_key(Cause.MOVE_FEE, mid), entries, ref=mid,
                         detail={"fee_asset": fee_asset, "fee": fee_units, "estimate": m.fee_est, "charged": charged})
        tx.execute("UPDATE funds_moves SET fee_units = ?, fee_asset = ? WHERE move_id = ?", (fee_units, fee_asset, mid))
        return True

    def book_arrival(self, tx: Transaction, mid: str, units: int) -> bool:
        """What the destination credited: transit -> destination. False if booked before."""
        m = self.move(mid, tx)
        if m.arrived_units != NOT_BOOKED:
            return False
        self.ledger.post(tx, tx_key(Cause.MOVE_ARRIVED, mid), acc.transfer(Flow.MOVE, m.asset, units, m.transit,
                                                                           m.destination), ref=mid)
        tx.execute("UPDATE funds_moves SET arrived_units = ? WHERE move_id = ?", (units, mid))
        return True

    def book_reversal(self, tx: Transaction, mid: str, back: dict[str, int] | None = None) -> dict[str, int]:
        """What came back to the source: `back` per asset, or everything still in transit.
        Returns what was booked."""
        m = self.move(mid, tx)
        held = self.ledger.holdings_of(m.transit, tx=tx)
        back = dict(held) if back is None else {a: u for a, u in back.items() if u}
        for a, u in back.items():
            if u > held.get(a, 0):
                raise MoveError(f"move {mid}: {u} units of {a} came back, transit holds {held.get(a, 0)}")
        entries = [e for a, u in sorted(back.items()) for e in acc.transfer(Flow.MOVE, a, u, m.transit, m.source)]
        if entries:
            self.ledger.post(tx, tx_key(Cause.MOVE_REVERSED, mid), entries, ref=mid, detail={"back": back})
        return back
