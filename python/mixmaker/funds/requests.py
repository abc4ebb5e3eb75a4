"""What user orders asked to move: one row per (allocation key, direction, asset).

The `Allocator` calls record a request; the mover batches WAITING requests of one asset, one
exchange account and one direction into a move (the move's PARTS are the requests' keys); the
move's end settles them: DONE when it arrived, back in a retry move when it failed and a retry
is safe, FAILED when no attempt is left. Every write takes the caller's store transaction.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Account, Flow
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.funds.moves import Direction, MoveError
from mixmaker.store import Store
from mixmaker.store.base import Transaction

MIGRATIONS = [
    """CREATE TABLE funds_requests (
        part_key TEXT PRIMARY KEY, alloc_key TEXT NOT NULL, direction TEXT NOT NULL, pool_id TEXT NOT NULL,
        venue_account TEXT NOT NULL, asset TEXT NOT NULL, units BIGINT NOT NULL, claim TEXT NOT NULL,
        state TEXT NOT NULL, move_id TEXT NOT NULL, created_ns BIGINT NOT NULL, updated_ns BIGINT NOT NULL)""",
    "CREATE INDEX funds_requests_by_key ON funds_requests (alloc_key, direction)",
    "CREATE INDEX funds_requests_by_state ON funds_requests (state, direction, venue_account, asset)",
]

DUST = acc.unclaimed("dust")


class RequestState(enum.Enum):
    WAITING = "waiting"  # not in a move yet
    MOVING = "moving"  # a part of `move_id`
    DONE = "done"  # arrived
    FAILED = "failed"  # its move failed and no retry is left: the money is back at its source


@dataclass(frozen=True, slots=True)
class Request:
    part_key: str
    alloc_key: str
    direction: Direction
    pool_id: str
    venue_account: str
    asset: str
    units: int
    claim: Account
    state: RequestState
    move_id: str
    created_ns: int


_COLUMNS = "part_key, alloc_key, direction, pool_id, venue_account, asset, units, claim, state, move_id, created_ns"


def _request(r: tuple[Any, ...]) -> Request:
    return Request(r[0], r[1], Direction(r[2]), r[3], r[4], r[5], int(r[6]), Account.parse(r[7]), RequestState(r[8]),
                   r[9], int(r[10]))


def part_key(alloc_key: str, direction: Direction, asset: str) -> str:
    return f"{alloc_key}|{direction.value}|{asset}"


class Requests:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate("funds_requests", MIGRATIONS)

    def record(self, tx: Transaction, alloc_key: str, direction: Direction, pool_id: str, venue_account: str,
               asset: str, units: int, claim: Account) -> Request:
        """Idempotent by (key, direction, asset); other amounts under a known key are a MoveError."""
        key = part_key(alloc_key, direction, asset)
        now = time.time_ns()
        tx.execute(f"INSERT INTO funds_requests ({_COLUMNS}, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?) "
                   "ON CONFLICT DO NOTHING", (key, alloc_key, direction.value, pool_id, venue_account, asset, units,
                                              claim.name, RequestState.WAITING.value, now, now))
        r = self.get(tx, key)
        assert r is not None
        if (r.pool_id, r.units, r.claim) != (pool_id, units, claim):
            raise MoveError(f"{key} was asked for {r.units} units to {r.pool_id} ({r.claim}), now {units} to {pool_id}")
        return r

    def get(self, q: Store | Transaction, key: str) -> Request | None:
        rows = q.query(f"SELECT {_COLUMNS} FROM funds_requests WHERE part_key = ?", (key,))
        return _request(rows[0]) if rows else None

    def of_alloc(self, q: Store | Transaction, alloc_key: str, direction: Direction) -> list[Request]:
        rows = q.query(f"SELECT {_COLUMNS} FROM funds_requests WHERE alloc_key = ? AND direction = ? ORDER BY asset",
                       (alloc_key, direction.value))
        return [_request(r) for r in rows]

    def waiting(self, q: Store | Transaction | None = None) -> list[Request]:
        rows = (q or self.store).query(f"SELECT {_COLUMNS} FROM funds_requests WHERE state = ? "
                                       "ORDER BY created_ns, part_key", (RequestState.WAITING.value,))
        return [_request(r) for r in rows]

    def of_move(self, q: Store | Transaction, move_id: str) -> list[Request]:
        rows = q.query(f"SELECT {_COLUMNS} FROM funds_requests WHERE move_id = ? ORDER BY part_key", (move_id,))
        return [_request(r) for r in rows]

    def unsettled(self, q: Store | Transaction | None = None) -> list[Request]:
        rows = (q or self.store).query(f"SELECT {_COLUMNS} FROM funds_requests WHERE state IN (?, ?) ORDER BY part_key",
                                       (RequestState.WAITING.value, RequestState.MOVING.value))
        return [_request(r) for r in rows]

    def assign(self, tx: Transaction, keys: list[str], move_id: str) -> None:
        """The requests become parts of `move_id` (a first move, or a retry of their failed one)."""
        for k in keys:
            tx.execute("UPDATE funds_requests SET state = ?, move_id = ?, updated_ns = ? WHERE part_key = ?",
                       (RequestState.MOVING.value, move_id, time.time_ns(), k))

    def fail(self, tx: Transaction, key: str) -> None:
        """A WAITING request that will not move (never in a move: its money never left)."""
        tx.execute("UPDATE funds_requests SET state = ?, updated_ns = ? WHERE part_key = ? AND state = ?",
                   (RequestState.FAILED.value, time.time_ns(), key, RequestState.WAITING.value))

    def to_dust(self, tx: Transaction, r: Request, ledger: Ledger) -> None:
        """A WAITING request to Mixin smaller than the withdrawal's fee: its units stay on the
        exchange as dust (`unclaimed:dust`), and the request is done."""
        ledger.post(tx, tx_key(Cause.DUST, r.part_key), acc.transfer(Flow.DUST, r.asset, r.units, r.claim, DUST),
                    ref=r.alloc_key.partition(".")[0], detail={"why": "less than the withdrawal fee", "on": r.venue_account})
        tx.execute("UPDATE funds_requests SET state = ?, updated_ns = ? WHERE part_key = ? AND state = ?",
                   (RequestState.DONE.value, time.time_ns(), r.part_key, RequestState.WAITING.value))

    def settle(self, tx: Transaction, move_id: str, state: RequestState) -> None:
        tx.execute("UPDATE funds_requests SET state = ?, updated_ns = ? WHERE move_id = ? AND state = ?",
                   (state.value, time.time_ns(), move_id, RequestState.MOVING.value))
