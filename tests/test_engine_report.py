"""The cycle report's arithmetic: the ledger next to what the simulators hold and paid; a single
unit anywhere out of place shows as a difference and the run is not ok."""

from __future__ import annotations

from decimal import Decimal

from mixmaker.engine import cycle_report
from mixmaker.funds import accounts as acc
from mixmaker.funds.accounts import Flow
from mixmaker.funds.assets import AssetMap, AssetSpec, VenueAsset
from mixmaker.funds.ledger import Ledger
from mixmaker.sim.mixin.setup import BTC
from mixmaker.store import SqliteStore
from mixmaker.users.catalog import Limits
from mixmaker.users.orders import OrderBook
from mixmaker.users.payouts import Outbox

ASSETS = AssetMap([AssetSpec("BTC", BTC, 8, {"binance": VenueAsset("BTC", "BTC")})])


def books(tmp_path):
    store = SqliteStore(tmp_path / "r.db")
    ledger = Ledger(store)
    ASSETS.register(ledger)
    orders = OrderBook(store)
    outbox = Outbox(store, ledger, ASSETS, Limits(), orders)
    # a payment of 1 BTC refunded in full, and 0.5 BTC on the exchange, owed to a pool
    ledger.post_now("payment:s1", acc.inflow(Flow.PAYMENT, "BTC", 100_000_000, acc.WALLET, acc.refund("s1")))
    ledger.post_now("refund:s1", acc.outflow(Flow.REFUND, "BTC", 100_000_000, acc.WALLET, acc.refund("s1")))
    ledger.post_now("payment:s2", acc.inflow(Flow.PAYMENT, "BTC", 50_000_000, acc.exchange("binance"), acc.pool("p")))
    return store, ledger, orders, outbox


def report(ledger, orders, outbox, *, after="1.5", wallet="0", exchange="0.5"):  # type: ignore[no-untyped-def]
    return cycle_report.build(ledger, orders, outbox, ASSETS, users_before={"u1": {"BTC": "2"}},
                              users_after={"u1": {"BTC": after}}, bot_wallet={"BTC": Decimal(wallet)},
                              exchanges={"binance": {"BTC": Decimal(exchange)}})


def test_every_unit_in_place_is_difference_zero(tmp_path):
    store, ledger, orders, outbox = books(tmp_path)
    r = report(ledger, orders, outbox)
    btc = r["assets"]["BTC"]
    assert btc["difference"] == "0"
    assert btc["ledger"] == {"payments": "1.5", "refunds": "1", "payouts": "0", "fees": "0", "bot_share": "0",
                             "trading_result": "0", "held": "0.5"}
    assert btc["observed"]["users"] == {"u1": {"before": "2", "after": "1.5"}}
    assert btc["observed"]["users_change"] == "-0.5" and btc["observed"]["exchange"] == {"binance": "0.5"}
    assert r["reconciliation"]["identity"]["BTC"]["gap"] == "0"
    assert r["ok"] is True
    store.close()


def test_one_unit_out_of_place_anywhere_is_found(tmp_path):
    store, ledger, orders, outbox = books(tmp_path)
    for kw, place in (({"after": "1.49999999"}, "users"), ({"wallet": "0.00000001"}, "wallet"),
                      ({"exchange": "0.49999999"}, "exchange:binance")):
        r = report(ledger, orders, outbox, **kw)
        assert r["assets"]["BTC"]["difference"] == "0.00000001", kw
        assert r["ok"] is False
        rec = r["reconciliation"]
        found = [p for p in rec["places"] if p["difference"] != "0"] + (
            [rec["users"]["BTC"]] if rec["users"]["BTC"]["difference"] != "0" else [])
        assert len(found) == 1 and (found[0].get("place", "users") == place), (kw, found)
    # a venue holding a fraction of a unit more than the ledger (a fee booked at its ceiling) is no difference
    assert report(ledger, orders, outbox, exchange="0.500000004")["assets"]["BTC"]["difference"] == "0"
    store.close()
