"""`mixmaker memo create|add|stop|decode` and `mixmaker status` through the real CLI."""

from __future__ import annotations

import json
import uuid

import pytest
from mixin_world import make_world, run
from users_world import create_text, new_layer

from mixmaker.cli import main
from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.setup import BTC
from mixmaker.users import memo as m

OID = "5b0e3a52-8f8e-4c53-9a53-2a4bd1a2f0c1"


def test_memo_create_prints_a_memo_that_decodes_to_what_was_asked(capsys):
    assert main(["memo", "create", "--market", "binance:BTC/USDT", "--preset", "tight", "--base", "0.5",
                 "--quote", "30000", "--order-id", OID]) == 0
    out, err = capsys.readouterr()
    text = out.strip()
    assert m.decode_extra(text.encode()) == m.CreateMemo(OID, "binance:BTC/USDT", "tight", 50_000_000,
                                                         3_000_000_000_000)
    assert f"order id: {OID}" in err
    assert main(["memo", "decode", text]) == 0
    assert "CREATE order" in capsys.readouterr().out
    assert main(["memo", "decode", text.encode().hex()]) == 0  # the snapshot's hex form
    assert "valid mixmaker memo" in capsys.readouterr().out


def test_memo_create_without_an_order_id_makes_one_and_stop_add_work(capsys):
    assert main(["memo", "create", "--market", "binance:BTC/USDT", "--preset", "tight", "--quote", "100"]) == 0
    out, err = capsys.readouterr()
    oid = err.split("order id: ")[1].split()[0]
    uuid.UUID(oid)
    assert main(["memo", "stop", "--order-id", oid]) == 0
    assert m.decode_extra(capsys.readouterr().out.strip().encode()) == m.StopMemo(oid)
    assert main(["memo", "add", "--order-id", oid]) == 0
    assert m.decode_extra(capsys.readouterr().out.strip().encode()) == m.AddMemo(oid)


@pytest.mark.parametrize("args,msg", [
    (["--market", "BTC/USDT", "--preset", "t", "--base", "1"], "bad_field"),
    (["--market", "binance:BTC/USDT", "--preset", "t"], "must expect"),
    (["--market", "binance:BTC/USDT", "--preset", "t", "--base", "0.123456789"], "past 8 decimals"),
    (["--market", "binance:BTC/USDT", "--preset", "t", "--base", "-1"], "negative"),
    (["--market", "binance:BTC/USDT", "--preset", "t", "--base", "1", "--order-id", "nope"], "not a UUID"),
])
def test_memo_create_refuses_bad_input_clearly(capsys, args, msg):
    assert main(["memo", "create", *args]) == 2
    assert msg in capsys.readouterr().err


def test_memo_decode_explains_invalid_memos(capsys):
    assert main(["memo", "decode", "hello world"]) == 1
    assert "not_base64url" in capsys.readouterr().out
    bad = m.to_text(m.StopMemo(OID))
    bad = bad[:-2] + ("A" if bad[-2] != "A" else "B") + bad[-1]
    assert main(["memo", "decode", bad]) == 1
    assert "checksum" in capsys.readouterr().out


def test_status_shows_orders_pools_balances_and_reconciliation(tmp_path, capsys):
    w = make_world(seed=3)
    try:
        alice = w.state.add_user(full_name="alice")
        w.state.deposit(alice.user_id, BTC, to_units("5"))
        layer = new_layer(w, tmp_path / "s.db")
        o1, o2 = str(uuid.uuid4()), str(uuid.uuid4())
        w.state.user_sends(alice.user_id, w.bot["app_id"], BTC, to_units("1"), create_text(o1, base=to_units("1")))
        w.state.user_sends(alice.user_id, w.bot["app_id"], BTC, to_units("0.2"), create_text(o2, base=to_units("1")))
        w.state.user_sends(alice.user_id, w.bot["app_id"], BTC, to_units("0.01"), b"?")
        run(layer.cycle(2))
        layer.close()
    finally:
        w.server.stop()
    assert main(["status", "--db", str(tmp_path / "s.db")]) == 0
    out = capsys.readouterr().out
    assert "awaiting_funds 1" in out and "active 1" in out
    assert "binance:BTC/USDT:tight" in out and "members 1" in out and "1.00000000 BTC" in out
    lines = out.splitlines()
    assert any("wallet:mixin" in x and x.endswith(" 0.20000000") for x in lines)  # 1 BTC went to the exchange
    assert any("exchange:binance" in x and x.endswith(" 1.00000000") for x in lines)
    assert "where the money is = whose it is" in out
    assert "LAST RECONCILIATION  never" in out
    assert main(["status", "--db", str(tmp_path / "s.db"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["orders"]["active"] == 1 and rep["payouts"] == {"sent": 1}
    assert main(["status", "--db", str(tmp_path / "none.db")]) == 2


def test_status_shows_the_last_reconciliation_when_ok_or_each_difference_and_the_halts(tmp_path, capsys):
    from mixmaker.funds.assets import AssetMap, AssetSpec, VenueAsset
    from mixmaker.funds.ledger import Ledger
    from mixmaker.funds.moves import MoveBook, Timing
    from mixmaker.funds.reconcile import Check, Line, Reconciler
    from mixmaker.store import SqliteStore

    db = tmp_path / "r.db"
    store = SqliteStore(db)
    ledger = Ledger(store)
    assets = AssetMap([AssetSpec("BTC", BTC, 8, {"binance": VenueAsset("BTC", "BTC")})])
    assets.register(ledger)
    rec = Reconciler(store, ledger, assets, MoveBook(store, ledger, Timing()), None, {},
                     now_ns=iter(range(1_700_000_000_000_000_000, 1_800_000_000_000_000_000, 10**9)).__next__)
    rec._store(Check("rc-1", [Line("wallet:mixin", "BTC", 5, 5), Line("exchange:binance", "BTC", 7, 7)]), 1)
    assert main(["status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "LAST RECONCILIATION  ok at 2023-11-14 22:13:" in out and "UTC" in out
    for n in (2, 3):  # the same difference twice: moves halt
        rec._store(Check(f"rc-{n}", [Line("wallet:mixin", "BTC", 5, 5),
                                     Line("exchange:binance", "BTC", 100_000, 30_000)], errors=["mixin: down"]), n)
    store.close()
    assert main(["status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("exchange:binance") and "difference" in x)
    assert line.split() == ["exchange:binance", "BTC", "ledger", "0.00100000", "venue", "0.00030000",
                            "difference", "-0.00070000"]
    assert "LAST RECONCILIATION  DIFFERENCES at 2023-11-14" in out and "not compared: mixin: down" in out
    assert "MOVES HALTED" in out and "exchange:binance BTC" in out.split("MOVES HALTED")[1]
    assert main(["status", "--db", str(db), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)["reconciliation"]
    assert r["ok"] is False and r["check_id"] == "rc-3" and r["differences"] == [
        {"account": "exchange:binance", "asset": "BTC", "ledger": "0.00100000", "observed": "0.00030000",
         "difference": "-0.00070000"}]
