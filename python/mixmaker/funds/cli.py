"""`mixmaker funds ...`: the operator's commands for funds in motion.

    mixmaker funds halts --db PATH                          # active halts (moves stopped) and why
    mixmaker funds clear-halt --db PATH --reason TEXT [--halt ID]
    mixmaker funds moves --db PATH [--all]                  # moves in flight (or every move)

Clearing a halt records the reason; a halt for a changed deposit address adopts the new address.
A reconciliation difference that is still there halts again after two more checks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mixmaker.store import SqliteStore

DEFAULT_DB = Path("mixmaker-state") / "mixmaker.db"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("funds", help="halts and moves of the funds layer",
                              description="Funds in motion between Mixin and the exchanges: halts and moves.")
    actions = p.add_subparsers(dest="funds_action", metavar="ACTION", required=True)
    h = actions.add_parser("halts", help="the active halts (no move is planned or sent while one is active)")
    h.add_argument("--db", type=Path, default=DEFAULT_DB)
    h.set_defaults(run=_halts)
    c = actions.add_parser("clear-halt", help="clear the active halts (or one) after a fix, with the reason",
                           description="Moves go on again. A reconciliation difference still there halts again "
                                       "after two checks; a changed deposit address is adopted.")
    c.add_argument("--db", type=Path, default=DEFAULT_DB)
    c.add_argument("--reason", required=True, help="what was fixed (recorded with the halt)")
    c.add_argument("--halt", metavar="ID", help="clear only this halt (see `mixmaker funds halts`)")
    c.set_defaults(run=_clear)
    m = actions.add_parser("moves", help="moves in flight (or all of them)")
    m.add_argument("--db", type=Path, default=DEFAULT_DB)
    m.add_argument("--all", action="store_true", help="every move, arrived and failed ones too")
    m.set_defaults(run=_moves)


def _fail(what: str, message: object) -> int:
    print(f"mixmaker funds {what}: error: {message}", file=sys.stderr)
    return 2


def _store(path: Path) -> SqliteStore:
    from mixmaker.store import SqliteStore

    return SqliteStore(path)


def _halts(args: argparse.Namespace) -> int:
    from mixmaker.funds import halts

    if not args.db.is_file():
        return _fail("halts", f"no database at {args.db}")
    store = _store(args.db)
    try:
        halts.migrate(store)
        active = halts.active(store)
    finally:
        store.close()
    if not active:
        print("no halt: moves may go")
    for h in active:
        print(f"{h.halt_id}\n  {h.kind.value} {h.account} {h.asset} {h.units}: {h.message}")
    return 0


def _clear(args: argparse.Namespace) -> int:
    from mixmaker.funds import halts
    from mixmaker.funds.addresses import AddressBook

    if not args.db.is_file():
        return _fail("clear-halt", f"no database at {args.db}")
    store = _store(args.db)
    try:
        halts.migrate(store)
        try:
            cleared = halts.clear(store, args.reason, args.halt)
        except halts.HaltError as e:
            return _fail("clear-halt", e)
        book = AddressBook(store)
        for h in cleared:
            if h.kind is halts.HaltKind.ADDRESS_CHANGED:
                book.adopt(h)
    finally:
        store.close()
    if not cleared:
        print("no active halt")
    for h in cleared:
        print(f"cleared {h.kind.value} {h.account} {h.asset}: {h.message}")
    return 0


def _moves(args: argparse.Namespace) -> int:
    from mixmaker.funds.ledger import Ledger
    from mixmaker.funds.moves import MoveBook

    if not args.db.is_file():
        return _fail("moves", f"no database at {args.db}")
    store = _store(args.db)
    try:
        book = MoveBook(store, Ledger(store))
        moves = book.all() if args.all else book.in_flight()
        for m in moves:
            amount = book.ledger.format(m.asset, m.send_units)
            print(f"{m.move_id}  {m.direction.side:<15} {m.venue_account:<10} {amount:>20} {m.asset:<6} "
                  f"{m.state.value:<8} {m.last_signal}" + (f"  hash {m.tx_hash}" if m.tx_hash else ""))
        if not moves:
            print("no move in flight" if not args.all else "no move")
    finally:
        store.close()
    return 0
