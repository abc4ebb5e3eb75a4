"""Reading snapshots exactly once: pages of 500, nanosecond timestamps shared by several
snapshots (also across a page boundary), and the server's faults on the way. Servers that do not
page as documented are in tests/test_mixin_snapshot_servers.py."""

from __future__ import annotations

import pytest
from mixin_world import make_world, run

from mixmaker.mixin.amounts import to_units
from mixmaker.mixin.snapshots import CursorStuckError, SnapshotReader
from mixmaker.mixin.times import format_rfc3339_ns, parse_rfc3339_ns
from mixmaker.sim.mixin.clock import rfc3339nano
from mixmaker.sim.mixin.setup import BTC
from mixmaker.store import SqliteStore

T0 = 1_800_000_000_000_000_000


@pytest.fixture
def world():
    w = make_world(seed=11)
    w.alice = w.state.add_user(full_name="alice")
    w.state.deposit(w.alice.user_id, BTC, to_units("100"))
    yield w
    w.server.stop()


def send_burst(w, n: int, *, start: int, share_every: int = 7) -> None:
    """n payments to the bot; runs of `share_every` share one created_at."""
    for i in range(n):
        w.state.user_sends(w.alice.user_id, w.bot["app_id"], BTC, 1 + i, f"m{i}".encode(),
                           at_ns=start + (i // share_every) * 1000)


def collect(w, store, **kw):
    got = []

    async def main():
        async with w.client() as c:
            reader = SnapshotReader(c, store, **kw)
            n = await reader.poll(lambda tx, s: got.append(s))
            return n, reader.cursor_ns

    n, cursor = run(main())
    return n, cursor, got


def test_times_keep_nanoseconds():
    assert parse_rfc3339_ns("2020-12-12T12:12:12.999999999Z") % 1_000_000_000 == 999_999_999
    assert parse_rfc3339_ns("2020-12-12T12:12:12.5Z") % 1_000_000_000 == 500_000_000
    assert parse_rfc3339_ns("2020-12-12T12:12:12Z") % 1_000_000_000 == 0
    assert parse_rfc3339_ns(format_rfc3339_ns(T0 + 1)) == T0 + 1 == parse_rfc3339_ns(rfc3339nano(T0 + 1))
    assert rfc3339nano(T0 + 10) .endswith(".00000001Z")  # Go's form drops trailing zeros
    with pytest.raises(ValueError):
        parse_rfc3339_ns("2020-12-12 12:12:12")


def test_every_snapshot_once_across_pages_with_shared_timestamps(world, tmp_path):
    send_burst(world, 1203, start=T0)
    store = SqliteStore(tmp_path / "s.db")
    n, cursor, got = collect(world, store)
    assert n == 1203 == len({s.snapshot_id for s in got})
    assert [s.memo for s in got] == [f"m{i}".encode() for i in range(1203)]
    assert sum(s.units for s in got) == sum(range(1, 1204))
    assert cursor == T0 + (1202 // 7) * 1000
    # more arrive, two of them at the cursor's own instant: only those are new
    send_burst(world, 2, start=cursor, share_every=10)
    n2, _, got2 = collect(world, store)
    assert n2 == 2 and [s.memo for s in got2] == [b"m0", b"m1"]
    assert collect(world, store)[0] == 0


def test_faults_on_the_way_lose_and_double_nothing(world, tmp_path):
    send_burst(world, 1100, start=T0)
    f = world.server.faults
    f.add("500", "/safe/snapshots", times=2)
    f.add("429", "/safe/snapshots")
    f.add("wrong_request_id", "/safe/snapshots")
    n, _, got = collect(world, SqliteStore(tmp_path / "s.db"))
    assert n == 1100 == len({s.snapshot_id for s in got})
    assert sorted(k for k, _ in f.fired) == ["429", "500", "500", "wrong_request_id"]


def test_a_failing_handler_keeps_nothing_of_its_page(world, tmp_path):
    send_burst(world, 3, start=T0)
    store = SqliteStore(tmp_path / "s.db")
    store.migrate("effects", ["CREATE TABLE effects (snapshot_id TEXT PRIMARY KEY)"])

    def effect(tx, s):
        tx.execute("INSERT INTO effects VALUES (?)", (s.snapshot_id,))
        if s.memo == b"m2":
            raise RuntimeError("handler bug")

    async def main(handler):
        async with world.client() as c:
            return await SnapshotReader(c, store).poll(handler)

    with pytest.raises(RuntimeError):
        run(main(effect))
    assert store.query("SELECT COUNT(*) FROM effects") == [(0,)]
    assert run(main(lambda tx, s: tx.execute("INSERT INTO effects VALUES (?)", (s.snapshot_id,)))) == 3
    assert store.query("SELECT COUNT(*) FROM effects") == [(3,)]


def test_a_page_all_at_the_cursor_instant_is_reported(world, tmp_path):
    send_burst(world, 6, start=T0, share_every=6)
    with pytest.raises(CursorStuckError, match="cannot advance"):
        collect(world, SqliteStore(tmp_path / "s.db"), page_limit=5)


def test_filters_and_paging_rules_of_the_server(world):
    send_burst(world, 3, start=T0)

    async def main():
        async with world.client() as c:
            desc = await c.snapshots(order="DESC", limit=2)
            by_opponent = await c.snapshots(offset_ns=T0, opponent=world.alice.user_id)
            with pytest.raises(ValueError):
                await c.snapshots(limit=501)
            one = await c.snapshot(desc[0].snapshot_id)
            return desc, by_opponent, one

    desc, by_opponent, one = run(main())
    assert [s.memo for s in desc] == [b"m2", b"m1"] and len(by_opponent) == 3
    assert one.snapshot_id == desc[0].snapshot_id and one.amount == desc[0].amount
