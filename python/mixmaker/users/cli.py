"""`mixmaker memo create|decode` and `mixmaker status`: the user layer's commands.

    mixmaker memo create --market binance:BTC/USDT --preset tight --base 0.5 [--quote 30000] [--order-id UUID]
    mixmaker memo decode HEX|BASE64
    mixmaker status [--db PATH] [--json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DB = Path("mixmaker-state") / "mixmaker.db"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    memo = subparsers.add_parser("memo", help="make or explain a payment memo (protocol v1)",
                                 description="Memos users paste into their wallet when they pay the bot.")
    actions = memo.add_subparsers(dest="memo_action", metavar="ACTION", required=True)
    mc = actions.add_parser("create", help="a memo that creates (or funds) an order in a pool",
                            description="Prints the memo text to paste and the order id. Pay the bot the base and/or "
                            "quote amounts with this same memo (in one or several payments).")
    mc.add_argument("--market", required=True, help="VENUE_ACCOUNT:BASE/QUOTE, e.g. binance:BTC/USDT")
    mc.add_argument("--preset", required=True, help="the strategy preset the operator offers")
    mc.add_argument("--base", default="0", metavar="AMOUNT", help="base amount you will pay (default 0)")
    mc.add_argument("--quote", default="0", metavar="AMOUNT", help="quote amount you will pay (default 0)")
    mc.add_argument("--order-id", metavar="UUID", help="your own order id (default: a new random one)")
    mc.set_defaults(run=_memo_create)
    for name, helptext in (("add", "a memo that adds funds to one of your orders"),
                           ("stop", "a memo that stops one of your orders and pays it out")):
        p = actions.add_parser(name, help=helptext, description=helptext + " (send any small amount with it).")
        p.add_argument("--order-id", required=True, metavar="UUID")
        p.set_defaults(run=_memo_simple, kind=name)
    md = actions.add_parser("decode", help="explain any memo in words, valid or not",
                            description="Takes the snapshot's memo (hex) or the text a user pasted (base64url).")
    md.add_argument("memo", metavar="HEX|BASE64")
    md.set_defaults(run=_memo_decode)

    st = subparsers.add_parser("status", help="user orders, pools, balances and the last reconciliation",
                               description="Reads the engine's database (it may be running).")
    st.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"the database (default {DEFAULT_DB})")
    st.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    st.set_defaults(run=_status)


def _fail(what: str, message: object) -> int:
    print(f"mixmaker {what}: error: {message}", file=sys.stderr)
    return 2


def _memo_create(args: argparse.Namespace) -> int:
    from mixmaker.money import MIXIN_DECIMALS, AmountError, to_units
    from mixmaker.users import memo as m

    try:
        base = to_units(args.base, MIXIN_DECIMALS, what="--base")
        quote = to_units(args.quote, MIXIN_DECIMALS, what="--quote")
        if base < 0 or quote < 0:
            raise AmountError("amounts must not be negative")
        order_id = args.order_id or m.new_order_id()
        text = m.to_text(m.CreateMemo(order_id, args.market, args.preset, base, quote))
        memo = m.decode_extra(text.encode())  # the order id as intake and status will show it (canonical)
    except (AmountError, m.MemoError) as e:
        return _fail("memo create", e)
    print(text)
    print(f"order id: {memo.order_id}", file=sys.stderr)
    print(m.describe(memo), file=sys.stderr)
    return 0


def _memo_simple(args: argparse.Namespace) -> int:
    from mixmaker.users import memo as m

    cls = m.AddMemo if args.kind == "add" else m.StopMemo
    try:
        text = m.to_text(cls(args.order_id))
        memo = m.decode_extra(text.encode())
    except m.MemoError as e:
        return _fail(f"memo {args.kind}", e)
    print(text)
    print(m.describe(memo), file=sys.stderr)
    return 0


def _memo_decode(args: argparse.Namespace) -> int:
    from mixmaker.users import memo as m

    memo, lines = m.explain(args.memo)
    for line in lines:
        print(line)
    return 0 if memo is not None else 1


def _status(args: argparse.Namespace) -> int:
    from mixmaker.users.status import collect, render_json, render_text

    if not args.db.is_file():
        return _fail("status", f"no database at {args.db}")
    try:
        report = collect(args.db)
    except Exception as e:  # a store error, a schema too new: say it, do not trace
        return _fail("status", e)
    print(render_json(report) if args.json else render_text(report))
    return 0
