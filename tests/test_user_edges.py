"""The user layer probed as an attacker and an unlucky operator would: memos at the limits of
their fields, odd payers, a wallet short of funds, crashes between paying and booking. Each test
is named for the hole it closes (or the attack it shows holds)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from mixin_world import run
from users_catalog import assets
from users_world import Clock, bal, create_text, new_layer, oid, pay, two_payers

from mixmaker.funds import accounts as acc
from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.setup import BTC, USDT_ERC20
from mixmaker.strategy.config import PMMConfig
from mixmaker.users.alerts import alerts
from mixmaker.users.catalog import Catalog, Limits, MarketSpec, Preset
from mixmaker.users.payouts import PayoutState


@pytest.fixture
def world():
    w = two_payers(seed=57)
    yield w
    w.server.stop()


def uncapped_catalog() -> Catalog:
    """No limits at all: nothing but the code itself stands between a memo and the store."""
    pmm = PMMConfig(bid_spread=Decimal("0.1"), ask_spread=Decimal("0.1"), order_amount=Decimal("0.001"))
    return Catalog(assets(), [MarketSpec("binance", "BTC/USDT", "BTC", "USDT", 2, 5)], [Preset("tight", pmm)],
                   Limits())


def test_a_memo_expecting_more_than_a_bigint_is_refunded_not_a_halt_of_intake(world, tmp_path):
    # u64 amounts past 2**63 raised OverflowError inside the page's transaction: intake stopped
    # for every user, at every poll, on one crafted memo.
    layer = new_layer(world, tmp_path / "u.db", catalog=uncapped_catalog())
    huge = pay(world, world.alice, BTC, "1", create_text(oid(), base=2**64 - 1))
    edge = pay(world, world.alice, BTC, "1", create_text(oid(), quote=2**63))
    after = pay(world, world.bob, BTC, "0.5", create_text(o := oid(), base=to_units("0.5")))
    run(layer.cycle(2))
    for s in (huge, edge):
        rec = layer.intake.record(s.snapshot_id)
        assert (rec["outcome"], rec["reason"]) == ("refund", "above_cap"), rec
    assert layer.intake.record(after.snapshot_id)["outcome"] == "credited"
    assert layer.orders.order(o).expect_base == to_units("0.5")
    assert bal(world, world.alice, BTC) == to_units("10")
    assert layer.ledger.verify() == []
    assert layer.ledger.owed(acc.pool("binance:BTC/USDT:tight"), "BTC") == to_units("0.5")


def test_a_payout_the_wallet_cannot_cover_waits_queued_with_an_alert_then_pays(world, tmp_path):
    # The wallet no longer holds the asset (an operator moved it, a reconciliation gap): the
    # refund was only logged at each pass, no operator was ever told.
    layer = new_layer(world, tmp_path / "u.db")
    bot = world.bot["app_id"]
    s = pay(world, world.alice, BTC, "0.5", b"not a memo")
    run(layer.poll())
    world.state.user_sends(bot, world.bob.user_id, BTC, world.state.balance(bot, BTC), b"operator")
    run(layer.cycle(2))
    [p] = layer.outbox.all()
    assert p.state is PayoutState.QUEUED and p.payout_id == f"refund:{s.snapshot_id}"
    short = [(k, subj, msg) for k, subj, msg in alerts(layer.store) if k == "wallet_short"]
    assert [subj for _, subj, _ in short] == [p.payout_id] and "0.50000000 BTC" in short[0][2]
    assert bal(world, world.alice, BTC) == to_units("9.5")
    world.state.deposit(bot, BTC, to_units("1"))  # the wallet is whole again
    run(layer.cycle(2))
    assert layer.outbox.all()[0].state is PayoutState.SENT
    assert bal(world, world.alice, BTC) == to_units("10")
    assert layer.ledger.verify() == []


def test_a_payer_that_is_not_a_mixin_user_id_is_kept_unclaimed_not_a_poison_refund(world, tmp_path):
    # An opponent that is not a user UUID was taken as a payer: its refund raised ValueError in
    # the payout worker at every pass, and every refund queued after it waited forever.
    layer = new_layer(world, tmp_path / "u.db")
    odd = world.state.add_user(user_id="multisig:2/3", full_name="odd")
    world.state.deposit(odd.user_id, BTC, to_units("1"))
    s_odd = pay(world, odd, BTC, "0.3", b"whatever")
    s_alice = pay(world, world.alice, BTC, "0.2", b"whatever")
    run(layer.cycle(2))
    assert layer.intake.record(s_odd.snapshot_id)["class"] == "unknown"
    assert layer.ledger.owed(acc.unclaimed("unknown"), "BTC") == to_units("0.3")
    assert ("unknown_deposit", s_odd.snapshot_id) in [(k, subj) for k, subj, _ in alerts(layer.store)]
    assert layer.intake.record(s_alice.snapshot_id)["reason"] == "bad_memo"
    assert bal(world, world.alice, BTC) == to_units("10")
    assert [p.payout_id for p in layer.outbox.all()] == [f"refund:{s_alice.snapshot_id}"]
    assert layer.ledger.verify() == []


def _status(capsys, path) -> tuple[int, str, str]:
    from mixmaker.cli import main

    rc = main(["status", "--db", str(path)])
    out, err = capsys.readouterr()
    return rc, out, err


def _engine_db(path, posts: int = 1):
    from mixmaker.funds.accounts import Flow
    from mixmaker.funds.ledger import Ledger
    from mixmaker.store import SqliteStore
    from mixmaker.users.orders import OrderBook

    store = SqliteStore(path)
    lg = Ledger(store)
    OrderBook(store)
    lg.register_asset("BTC", 8)
    for n in range(posts):
        lg.post_now(f"payment:s{n}", acc.inflow(Flow.PAYMENT, "BTC", 5, acc.WALLET, acc.user_order("o1")))
    return store


def test_status_reads_the_database_it_is_given_even_with_hash_or_question_mark_in_its_path(tmp_path, capsys):
    # "file:{path}?mode=ro" cut the path at '#' or '?': it read another file (or none) as the engine's
    _engine_db(tmp_path / "a#b.db").close()
    _engine_db(tmp_path / "a", posts=0).close()  # what the cut path named
    _engine_db(tmp_path / "c?d.db").close()
    for name in ("a#b.db", "c?d.db"):
        rc, out, err = _status(capsys, tmp_path / name)
        assert rc == 0, err
        assert any("wallet:mixin" in line and line.endswith("0.00000005") for line in out.splitlines()), out


def test_status_refuses_an_empty_file_another_programs_database_and_a_newer_schema(tmp_path, capsys):
    import sqlite3

    (tmp_path / "empty.db").write_bytes(b"")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE notes (x TEXT)")
    other.commit()
    other.close()
    (tmp_path / "junk.db").write_bytes(bytes(range(256)) * 20)
    store = _engine_db(tmp_path / "newer.db")
    with store.transaction() as tx:
        tx.execute("UPDATE schema_versions SET version = version + 2 WHERE component = 'ledger'")
    store.close()
    cases = {"empty.db": "not a mixmaker database", "other.db": "not a mixmaker database",
             "junk.db": "cannot read", "newer.db": "written by a newer mixmaker (ledger schema version"}
    for name, message in cases.items():
        rc, out, err = _status(capsys, tmp_path / name)
        assert (rc, out) == (2, ""), (name, out)
        assert message in err and "Traceback" not in err, (name, err)


def test_a_memo_pasted_with_a_trailing_newline_is_refunded_saying_so(world, tmp_path):
    # Decided: strict (one memo, one spelling); the refund's detail names the likely cause.
    from mixmaker.users import memo as m

    layer = new_layer(world, tmp_path / "u.db")
    text = create_text(oid(), base=to_units("0.5"))
    snaps = [pay(world, world.alice, BTC, "0.5", extra) for extra in (text + b"\n", text + b"\r\n", b" " + text)]
    run(layer.cycle(2))
    for s in snaps:
        rec = layer.intake.record(s.snapshot_id)
        assert (rec["reason"], rec["detail"]) == ("bad_memo", "not_base64url: whitespace around the memo "
                                                               "(pasted with a newline?)"), rec
    assert layer.orders.all() == [] and bal(world, world.alice, BTC) == to_units("10")
    memo, lines = m.explain((text + b"\n").hex())  # the snapshot's hex keeps the newline
    assert memo is None and "whitespace" in lines[0]


def test_memo_create_prints_the_order_id_as_intake_and_status_will_show_it(capsys):
    from mixmaker.cli import main
    from mixmaker.users import memo as m

    canonical = "5b0e3a52-8f8e-4c53-9a53-2a4bd1a2f0c1"
    for typed in ("{5B0E3A52-8F8E-4C53-9A53-2A4BD1A2F0C1}", "urn:uuid:" + canonical, canonical.replace("-", "")):
        assert main(["memo", "create", "--market", "binance:BTC/USDT", "--preset", "tight", "--base", "1",
                     "--order-id", typed]) == 0
        out, err = capsys.readouterr()
        assert m.decode_extra(out.strip().encode()).order_id == canonical
        assert f"order id: {canonical}\n" in err and f"CREATE order {canonical} " in err
        assert main(["memo", "stop", "--order-id", typed]) == 0
        assert f"STOP order {canonical} " in capsys.readouterr().err


def test_a_return_whose_asset_left_the_catalog_fails_with_an_alert_and_blocks_no_other_refund(world, tmp_path):
    # The operator dropped BTC (and its market) while an order still held BTC: its return's
    # asset id was "BTC", Payments raised ValueError, and the worker stopped at that row forever.
    from mixmaker.funds.assets import AssetMap, AssetSpec

    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    pay(world, world.alice, BTC, "0.3", create_text(o, base=to_units("1")))
    run(layer.poll())
    layer.close()
    usdt_only = Catalog(AssetMap([AssetSpec("USDT", USDT_ERC20, 8)]), [], [], Limits())
    later = new_layer(world, tmp_path / "u.db", catalog=usdt_only, clock=Clock(2**62))
    run(later.cycle(1))
    s = pay(world, world.bob, USDT_ERC20, "5", b"no memo")  # refunded after the return was queued
    run(later.cycle(2))
    assert later.intake.record(s.snapshot_id)["reason"] == "bad_memo"
    assert bal(world, world.bob, USDT_ERC20) == to_units("100000")
    [ret] = later.outbox.of_order(o)
    assert ret.state is PayoutState.FAILED
    assert later.orders.order(o).state.value == "failed"
    assert ("payment_refused", ret.payout_id) in [(k, subj) for k, subj, _ in alerts(later.store)]
    assert later.ledger.owed(acc.user_order(o), "BTC") == to_units("0.3")  # still owed, in the books
    assert later.ledger.verify() == []


def _request_id(payout_id: str) -> str:
    from mixmaker.mixin.ids import unique_object_id

    return unique_object_id(payout_id, "transfer")  # what Payments derives from the cause


def test_a_refund_recorded_as_refused_that_mixin_shows_paid_is_booked_with_an_alert(world, tmp_path):
    # The outgoing snapshot of a payment the outbox had FAILED was dropped as "already booked":
    # money left the wallet and the books still owed it, silently.
    layer = new_layer(world, tmp_path / "u.db")
    bot = world.bot["app_id"]
    s = pay(world, world.alice, BTC, "0.3", b"no memo")
    world.server.faults.add("api_error", "/safe/transaction/requests", code=20150, times=1)
    run(layer.cycle(1))
    [p] = layer.outbox.all()
    assert p.state is PayoutState.FAILED
    world.state.user_sends(bot, world.alice.user_id, BTC, to_units("0.3"), p.memo.encode(),
                           request_id=_request_id(p.payout_id))  # Mixin had it after all
    run(layer.cycle(1))
    assert layer.outbox.all()[0].state is PayoutState.SENT
    assert layer.ledger.owed(acc.refund(s.snapshot_id), "BTC") == 0
    assert layer.ledger.balance(acc.WALLET, "BTC") == world.state.balance(bot, BTC)
    assert ("payment_refused", f"{p.payout_id}:paid") in [(k, subj) for k, subj, _ in alerts(layer.store)]
    assert bal(world, world.alice, BTC) == to_units("10")
    assert layer.ledger.verify() == []


def test_an_outgoing_under_a_refunds_request_id_with_another_amount_is_alerted_not_booked(world, tmp_path):
    # Intake booked the outbox row's amount whatever the snapshot said: the books then showed
    # a refund of 0.4 BTC that Mixin had paid as 0.1.
    class Crash(Exception):
        pass

    def crash_at(step, ident):
        if step == "recorded":
            raise Crash(step)

    layer = new_layer(world, tmp_path / "u.db", crash_at=crash_at)
    bot = world.bot["app_id"]
    s = pay(world, world.alice, BTC, "0.4", b"no memo")
    run(layer.poll())
    with pytest.raises(Crash):  # Payments recorded the intent (its request id), then the process died
        run(layer.pay_out())
    [p] = layer.outbox.all()
    out = world.state.user_sends(bot, world.alice.user_id, BTC, to_units("0.1"), b"", request_id=_request_id(p.payout_id))
    run(layer.poll())
    bot_out = next(x for x in world.state.snapshots if x.user_id == bot and x.request_id == out.request_id)
    rec = layer.intake.record(bot_out.snapshot_id)
    assert (rec["class"], rec["outcome"]) == ("our_outgoing", "alert")
    assert ("unexpected_outgoing", bot_out.snapshot_id) in [(k, subj) for k, subj, _ in alerts(layer.store)]
    assert layer.outbox.all()[0].state is PayoutState.QUEUED
    assert layer.ledger.owed(acc.refund(s.snapshot_id), "BTC") == to_units("0.4")
    assert layer.ledger.verify() == []


# --- attacks and accidents that hold (kept as tests so they keep holding) ----------------------


class _DoublingClient:
    """A Mixin client whose snapshot pages repeat their last item (a duplicated notification)."""

    def __init__(self, client) -> None:
        self._client = client

    async def snapshots(self, **kw):
        page = await self._client.snapshots(**kw)
        return page + page[-1:] if 0 < len(page) < kw["limit"] - 1 else page


def test_held_a_snapshot_repeated_in_one_page_and_by_a_rescan_is_credited_once(world, tmp_path):
    from mixmaker.mixin.snapshots import SnapshotReader

    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    for _ in range(3):
        pay(world, world.alice, USDT_ERC20, "100", create_text(o, quote=to_units("1000")))

    async def read_twice():
        async with world.client() as c:
            reader = SnapshotReader(_DoublingClient(c), layer.store, rescan_interval_s=0.0)
            for _ in range(3):  # every poll is a re-scan here
                await reader.poll(layer.intake.handle)

    run(read_twice())
    assert layer.orders.paid(layer.store, o) == {"USDT": to_units("300")}
    assert layer.ledger.owed(acc.user_order(o), "USDT") == to_units("300") and layer.ledger.verify() == []


def test_held_dust_exactly_at_the_threshold_is_sent_below_it_is_kept(world, tmp_path):
    layer = new_layer(world, tmp_path / "u.db")  # BTC dust threshold: 0.00001
    at = pay(world, world.alice, BTC, "0.00001", b"x")
    below = pay(world, world.alice, BTC, "0.00000999", b"x")
    run(layer.cycle(2))
    states = {p.snapshot_id: p.state for p in layer.outbox.all()}
    assert states == {at.snapshot_id: PayoutState.SENT, below.snapshot_id: PayoutState.DUST}
    assert layer.ledger.owed(acc.unclaimed("dust"), "BTC") == 999
    assert bal(world, world.alice, BTC) == to_units("10") - 999 and layer.ledger.verify() == []


def test_held_the_bot_paying_itself_and_the_fee_user_paying_the_bot(world, tmp_path):
    from mixmaker.sim.mixin import FEE_USER_ID

    layer = new_layer(world, tmp_path / "u.db")
    bot = world.bot["app_id"]
    pay(world, world.alice, BTC, "1", create_text(oid(), base=to_units("1")))  # the bot holds some BTC
    run(layer.cycle(2))
    world.state.user_sends(bot, bot, BTC, to_units("0.2"), b"to myself")
    world.state.deposit(FEE_USER_ID, BTC, to_units("1"))
    fee = world.state.user_sends(FEE_USER_ID, bot, BTC, to_units("0.05"), b"oops")
    run(layer.cycle(2))
    classes = sorted(layer.intake.record(s.snapshot_id)["class"] for s in world.state.snapshots
                     if s.user_id == bot and s.memo == b"to myself")
    assert classes == ["change", "our_outgoing"]  # no money booked, and the outgoing is alerted
    assert layer.intake.record(fee.snapshot_id)["reason"] == "bad_memo"
    assert world.state.balance(FEE_USER_ID, BTC) == to_units("1")  # refunded to its payer, like anyone
    held = layer.ledger.balance(acc.WALLET, "BTC") + layer.ledger.balance(acc.exchange("binance"), "BTC")
    assert held == world.state.balance(bot, BTC) and layer.ledger.verify() == []  # the fake allocator moves no coins


def test_held_stop_and_add_after_a_stop_or_on_a_settled_order_are_refunded(world, tmp_path):
    from mixmaker.users import memo as m

    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    pay(world, world.alice, BTC, "0.5", create_text(o, base=to_units("0.5")))
    run(layer.cycle(2))
    layer.pools.hold[o] = 100  # the pool takes its time to free the order's part: it stays STOPPING
    pay(world, world.alice, BTC, "0.001", m.to_extra(m.StopMemo(o)))
    run(layer.cycle(1))
    assert layer.orders.order(o).state.value == "stopping"
    late = [pay(world, world.alice, BTC, "0.01", m.to_extra(memo)) for memo in (m.AddMemo(o), m.StopMemo(o))]
    by_bob = pay(world, world.bob, BTC, "0.01", m.to_extra(m.StopMemo(o)))
    run(layer.cycle(1))
    assert [layer.intake.record(s.snapshot_id)["reason"] for s in (*late, by_bob)] == [
        "order_closed", "order_closed", "not_your_order"]
    layer.pools.hold[o] = 0
    run(layer.cycle(3))
    assert layer.orders.order(o).state.value == "settled"
    after = pay(world, world.alice, BTC, "0.01", m.to_extra(m.AddMemo(o)))
    run(layer.cycle(2))
    assert layer.intake.record(after.snapshot_id)["reason"] == "order_closed"
    assert bal(world, world.alice, BTC) == to_units("10") and bal(world, world.bob, BTC) == to_units("10")
    assert layer.ledger.verify() == []


def test_held_no_keystore_secret_reaches_logs_alerts_rows_or_reprs_of_the_user_layer(world, tmp_path, caplog):
    import base64
    import logging

    from mixmaker.mixin.payments import Payments
    from mixmaker.users.payouts import PayoutWorker
    from mixmaker.users.statement import statement

    caplog.set_level(logging.DEBUG)
    layer = new_layer(world, tmp_path / "u.db")
    bot = world.bot["app_id"]
    o = oid()
    pay(world, world.alice, BTC, "0.4", create_text(o, base=to_units("1")))  # awaits more funds
    pay(world, world.alice, BTC, "0.3", b"no memo")
    world.server.faults.add("api_error", "/safe/transaction/requests", code=20150, times=1)  # refused for good
    run(layer.cycle(2))
    pay(world, world.alice, BTC, "0.2", b"again")
    run(layer.poll())
    world.state.user_sends(bot, world.bob.user_id, BTC, world.state.balance(bot, BTC), b"drained")
    run(layer.cycle(2))  # wallet short, unexpected outgoing
    kinds = {k for k, _, _ in alerts(layer.store)}
    assert {"payment_refused", "wallet_short", "unexpected_outgoing"} <= kinds

    async def worker_repr() -> str:
        async with world.client() as c:
            payments = Payments(c, layer.store)
            return (repr(PayoutWorker(layer.outbox, payments)) + repr(payments) + repr(vars(payments)) + repr(c)
                    + repr(c.keystore) + str(vars(c.keystore)))

    texts = [caplog.text, run(worker_repr())]
    for table in ("user_alerts", "user_intake", "user_payouts", "user_orders", "user_order_events", "ledger_transactions",
                  "mixin_payments"):
        texts += [repr(r) for r in layer.store.query(f"SELECT * FROM {table}")]
    texts += [repr(x) for x in (layer.intake, layer.outbox, layer.worker, layer.orders.all(), layer.outbox.all())]
    texts.append(statement(layer.ledger, layer.orders, layer.outbox, o).render(layer.ledger))
    blob = "\n".join(texts)
    for field in ("session_private_key", "spend_private_key"):
        raw = bytes.fromhex(world.bot[field])
        for form in (raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(),
                     base64.urlsafe_b64encode(raw).decode().rstrip("="), raw[:16].hex()):
            assert form not in blob, field


def test_a_kill_between_payments_failed_and_the_outbox_leaves_no_refund_queued_forever(world, tmp_path):
    # Payments commits 'failed' and then raises; a kill before the outbox records it left the
    # row QUEUED while Payments answered the cause with its FAILED payment ever after, quietly:
    # retried at every pass, never alerted.
    from mixmaker.mixin.errors import MixinError
    from mixmaker.mixin.payments import Payments

    layer = new_layer(world, tmp_path / "u.db")
    s = pay(world, world.alice, BTC, "0.3", b"no memo")
    run(layer.poll())
    [p] = layer.outbox.queued()

    async def the_dying_process():
        async with world.client() as c:
            await Payments(c, layer.store).transfer(p.payout_id, p.mixin_asset_id, "0.3", p.opponent, p.memo.encode())

    world.server.faults.add("api_error", "/safe/transaction/requests", code=20150, times=1)
    with pytest.raises(MixinError):
        run(the_dying_process())
    assert layer.outbox.all()[0].state is PayoutState.QUEUED  # the process is gone before this was written
    run(layer.cycle(2))
    assert layer.outbox.all()[0].state is PayoutState.FAILED
    assert ("payment_refused", p.payout_id) in [(k, subj) for k, subj, _ in alerts(layer.store)]
    assert layer.ledger.owed(acc.refund(s.snapshot_id), "BTC") == to_units("0.3")  # still owed, in the books


def test_held_a_refund_cause_already_paid_with_other_parameters_fails_loudly_and_is_not_booked(world, tmp_path):
    # Some other code paid 0.1 BTC under the refund's cause: Payments refuses to pay the cause
    # again with other parameters; the outbox records a refusal with an alert, and Mixin's
    # outgoing of 0.1 is not booked as the 0.3 refund.
    from mixmaker.mixin.payments import Payments

    layer = new_layer(world, tmp_path / "u.db")
    s = pay(world, world.alice, BTC, "0.3", b"no memo")
    run(layer.poll())
    [p] = layer.outbox.queued()

    async def other_code():
        async with world.client() as c:
            await Payments(c, layer.store).transfer(p.payout_id, p.mixin_asset_id, "0.1", p.opponent, b"other")

    run(other_code())
    run(layer.cycle(2))
    assert layer.outbox.all()[0].state is PayoutState.FAILED
    kinds = [k for k, _, _ in alerts(layer.store)]
    assert "payment_refused" in kinds and "unexpected_outgoing" in kinds
    assert bal(world, world.alice, BTC) == to_units("9.8")  # paid once, by the other code; never twice
    assert layer.ledger.owed(acc.refund(s.snapshot_id), "BTC") == to_units("0.3") and layer.ledger.verify() == []


def test_held_a_snapshot_amount_past_8_decimals_halts_intake_and_credits_nothing(world, tmp_path):
    # Mixin's amounts have 8 decimals; a page with a 9th is a broken contract: the page is
    # dropped whole and intake halts for an operator (never rounded, never half-credited).
    from mixmaker.mixin import MixinClient
    from mixmaker.mixin.snapshots import SnapshotPageError, SnapshotReader

    class NinthDecimal(MixinClient):
        async def request(self, method, path, **kw):
            out = await super().request(method, path, **kw)
            if path == "/safe/snapshots":
                for row in out:
                    if row["asset_id"] == BTC and not row["amount"].startswith("-"):
                        row["amount"] = f"{Decimal(row['amount']) + Decimal('1e-9'):f}"
            return out

    layer = new_layer(world, tmp_path / "u.db")
    o = oid()
    pay(world, world.alice, USDT_ERC20, "100", create_text(o, quote=to_units("1000")))
    pay(world, world.alice, BTC, "0.5", create_text(oid(), base=to_units("0.5")))

    async def poll():
        async with NinthDecimal(world.keystore, world.server.url, backoff_s=0.01, timeout_s=5) as c:
            reader = SnapshotReader(c, layer.store)
            with pytest.raises(SnapshotPageError, match="malformed"):
                await reader.poll(layer.intake.handle)
            return reader.cursor_ns

    assert run(poll()) == 0
    assert layer.orders.all() == [] and layer.ledger.balances() == {}


def test_a_market_whose_name_no_memo_can_carry_is_refused_at_start():
    # A 32-character venue account and 20-character symbols make a 74-byte market name: the
    # catalog took it, and every `memo create` for it failed (a memo carries 64 bytes of market).
    from mixmaker.funds.assets import AssetMap, AssetSpec
    from mixmaker.users import memo as m
    from mixmaker.users.catalog import CatalogError

    base, quote = "B" * 20, "Q" * 20
    spec = AssetMap([AssetSpec(base, BTC, 8), AssetSpec(quote, USDT_ERC20, 8)])
    long_market = MarketSpec("v" * 32, f"{base}/{quote}", base, quote, 2, 5)
    with pytest.raises(m.MemoError):
        m.to_text(m.CreateMemo(oid(), long_market.name, "tight", 1, 0))
    with pytest.raises(CatalogError, match="longer than the 64 bytes a memo can carry"):
        Catalog(spec, [long_market], [])
    fits = MarketSpec("v" * 22, f"{base}/{quote}", base, quote, 2, 5)  # exactly 64 bytes
    assert len(fits.name) == 64 and Catalog(spec, [fits], []).market(fits.name) is fits
    assert m.decode_extra(m.to_extra(m.CreateMemo(o := oid(), fits.name, "tight", 1, 0))).order_id == o
