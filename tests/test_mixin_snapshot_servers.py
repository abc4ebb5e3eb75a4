"""Snapshot intake against servers that do not page as documented (the simulator's
`faults.snapshots` quirks): nothing lost, nothing doubled; a page that breaks the contract is
dropped whole and halts intake with an alert until `resume()`."""

from __future__ import annotations

import logging

import pytest
from mixin_world import make_world, run

from mixmaker.mixin.amounts import to_units
from mixmaker.mixin.snapshots import IntakeHaltedError, PageFault, SnapshotPageError, SnapshotReader
from mixmaker.sim.mixin.setup import BTC
from mixmaker.store import SqliteStore

T0 = 1_800_000_000_000_000_000
MINUTE = 60_000_000_000


@pytest.fixture
def world():
    w = make_world(seed=23)
    w.alice = w.state.add_user(full_name="alice")
    w.state.deposit(w.alice.user_id, BTC, to_units("1000"))
    yield w
    w.server.stop()


def send(w, n: int, *, start: int, step_ns: int = 1000, share_every: int = 1, first: int = 0) -> None:
    """n payments to the bot, memo m<i>; runs of `share_every` share one created_at."""
    for i in range(first, first + n):
        w.state.user_sends(w.alice.user_id, w.bot["app_id"], BTC, 1 + i, f"m{i}".encode(),
                           at_ns=start + ((i - first) // share_every) * step_ns)


class Intake:
    """One reader on one store, polled like a service would, recording what it delivered."""

    def __init__(self, w, store, **kw) -> None:
        self.w, self.store, self.kw = w, store, kw
        store.migrate("effects", ["CREATE TABLE effects (snapshot_id TEXT PRIMARY KEY, memo BLOB NOT NULL)"])
        self.reader: SnapshotReader | None = None

    def handle(self, tx, s) -> None:
        tx.execute("INSERT INTO effects VALUES (?, ?)", (s.snapshot_id, s.memo))  # a double would raise here

    def poll(self, *, rescan: bool = False) -> int:
        async def main():
            async with self.w.client() as c:
                if self.reader is None:
                    self.reader = SnapshotReader(c, self.store, **self.kw)
                self.reader.client = c
                return await (self.reader.rescan(self.handle) if rescan else self.reader.poll(self.handle))

        return run(main())

    def memos(self) -> list[bytes]:
        return [bytes(m) for (m,) in self.store.query("SELECT memo FROM effects")]


def expect_all(intake: Intake, n: int, first: int = 0) -> None:
    assert sorted(intake.memos()) == sorted(f"m{i}".encode() for i in range(first, first + n))


def test_a_server_ignoring_order_halts_intake_and_keeps_nothing(world, tmp_path, caplog):
    """Newest first: without the check the first page moves the cursor to the newest snapshot and
    everything older is never delivered."""
    send(world, 1203, start=T0, share_every=7)
    world.server.faults.snapshots.ignore_order = True
    intake = Intake(world, SqliteStore(tmp_path / "s.db"))
    with caplog.at_level(logging.ERROR, logger="mixmaker.mixin.snapshots"), pytest.raises(SnapshotPageError) as e:
        intake.poll()
    assert e.value.halt.fault == PageFault.DESCENDING == intake.reader.halted.fault
    assert intake.memos() == [] and intake.reader.cursor_ns == 0  # nothing of the page was kept
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "snapshot_intake_halted"]
    assert record.fault == "descending" and record.reader == "bot"
    with pytest.raises(IntakeHaltedError):  # stays halted: no request is even made
        intake.poll()
    # Once the server behaves and an operator resumes, every snapshot arrives once.
    world.server.faults.snapshots.ignore_order = False
    intake.reader.resume()
    assert intake.poll() == 1203
    expect_all(intake, 1203)


def test_a_server_ignoring_order_mid_stream_loses_nothing(world, tmp_path):
    intake = Intake(world, SqliteStore(tmp_path / "s.db"))
    send(world, 100, start=T0)
    assert intake.poll() == 100
    send(world, 1000, start=T0 + MINUTE, first=100)
    world.server.faults.snapshots.ignore_order = True
    cursor = intake.reader.cursor_ns
    with pytest.raises(SnapshotPageError, match="descending"):
        intake.poll()
    assert intake.reader.cursor_ns == cursor and len(intake.memos()) == 100
    world.server.faults.snapshots.ignore_order = False
    intake.reader.resume()
    assert intake.poll() == 1000
    expect_all(intake, 1100)


def test_a_server_ignoring_offset_halts_at_the_second_page(world, tmp_path):
    send(world, 1203, start=T0, share_every=3)
    world.server.faults.snapshots.ignore_offset = True
    intake = Intake(world, SqliteStore(tmp_path / "s.db"))
    with pytest.raises(SnapshotPageError) as e:
        intake.poll()
    # The first page (from the oldest) is a valid page and is kept; the second starts over at
    # the oldest, before its offset, and nothing of it is kept.
    assert e.value.halt.fault == PageFault.BEFORE_OFFSET
    assert len(intake.memos()) == 500
    world.server.faults.snapshots.ignore_offset = False
    intake.reader.resume()
    assert intake.poll() == 703
    expect_all(intake, 1203)


def test_a_server_ignoring_offset_and_order_never_moves_the_cursor(world, tmp_path):
    """The latest page, newest first (what the failed bots polled): halted at once."""
    intake = Intake(world, SqliteStore(tmp_path / "s.db"))
    send(world, 10, start=T0)
    assert intake.poll() == 10
    send(world, 700, start=T0 + MINUTE, first=10)
    world.server.faults.snapshots.ignore_offset = world.server.faults.snapshots.ignore_order = True
    cursor = intake.reader.cursor_ns
    with pytest.raises(SnapshotPageError):
        intake.poll()
    assert intake.reader.cursor_ns == cursor and len(intake.memos()) == 10


def test_a_page_reaching_behind_its_offset_is_refused(world, tmp_path):
    send(world, 20, start=T0, step_ns=1_000_000_000)
    intake = Intake(world, SqliteStore(tmp_path / "s.db"))
    assert intake.poll() == 20
    send(world, 1, start=T0 + MINUTE, first=20)
    # The server answers from a few snapshots before the offset it was asked for.
    world.server.faults.add("repeat_boundary", "/safe/snapshots", times=1)
    with pytest.raises(SnapshotPageError) as e:
        intake.poll()
    assert e.value.halt.fault == PageFault.BEFORE_OFFSET and len(intake.memos()) == 20
    intake.reader.resume()
    assert intake.poll() == 1


@pytest.mark.parametrize("share_every", [1, 7, 250, 499])
def test_an_exclusive_offset_loses_nothing_at_page_boundaries(world, tmp_path, share_every):
    """Runs of snapshots sharing one created_at straddle the page boundaries; the server leaves
    out the rows at exactly the offset."""
    world.server.faults.snapshots.exclusive_offset = True
    send(world, 1203, start=T0, share_every=share_every)
    intake = Intake(world, SqliteStore(tmp_path / "s.db"))
    assert intake.poll() == 1203
    expect_all(intake, 1203)
    # More at the cursor's own instant, and after it: the next poll reads them, and only them.
    cursor = intake.reader.cursor_ns
    send(world, 3, start=cursor, step_ns=0, first=1203)
    send(world, 2, start=cursor + 1, first=1206)
    assert intake.poll() == 5
    expect_all(intake, 1208)
    assert intake.poll() == 0


def test_a_coarse_server_clock_many_snapshots_at_one_instant(tmp_path):
    """The simulator rounds created_at down to 1 µs: dozens share each instant, pages of 50 cut
    through them, and the offset is exclusive too."""
    w = make_world(seed=29, snapshot_time_step_ns=1000)
    try:
        alice = w.state.add_user(full_name="alice")
        w.state.deposit(alice.user_id, BTC, to_units("1000"))
        w.alice = alice
        w.server.faults.snapshots.exclusive_offset = True
        send(w, 600, start=T0, step_ns=37)  # 27 snapshots per µs, 600 in 22 µs
        times = {s.created_at for s in w.state.snapshots if s.user_id == w.bot["app_id"]}
        assert len(times) < 30
        intake = Intake(w, SqliteStore(tmp_path / "s.db"), page_limit=50)
        assert intake.poll() == 600
        expect_all(intake, 600)
    finally:
        w.server.stop()


def test_a_snapshot_visible_late_behind_the_cursor_is_read_by_the_overlap(world, tmp_path):
    intake = Intake(world, SqliteStore(tmp_path / "s.db"), overlap_ns=5_000_000_000)
    send(world, 20, start=T0, step_ns=1_000_000_000)
    assert intake.poll() == 20
    cursor = intake.reader.cursor_ns
    send(world, 1, start=cursor - 3_000_000_000, first=20)  # committed late, 3 s behind the newest
    assert intake.poll() == 1 and intake.reader.stats.repeated > 0 and intake.reader.stats.late == 1
    expect_all(intake, 21)


def test_the_rescan_finds_what_the_overlap_could_not_and_nothing_else(world, tmp_path):
    intake = Intake(world, SqliteStore(tmp_path / "s.db"), overlap_ns=2_000_000_000,
                    rescan_window_ns=10 * MINUTE, rescan_interval_s=None)
    send(world, 30, start=T0, step_ns=MINUTE // 6)
    assert intake.poll() == 30
    assert intake.poll(rescan=True) == 0  # all is well: nothing new
    cursor = intake.reader.cursor_ns
    send(world, 1, start=cursor - 2 * MINUTE, first=30)  # far later than the overlap
    assert intake.poll() == 0  # the overlap does not reach it
    assert intake.poll(rescan=True) == 1
    assert intake.reader.stats.rescan_found == 1 and intake.reader.stats.rescans == 2
    assert intake.poll(rescan=True) == 0
    expect_all(intake, 31)


def test_the_seen_table_stays_bounded_and_nothing_is_delivered_twice(world, tmp_path):
    store = SqliteStore(tmp_path / "s.db")
    intake = Intake(world, store, overlap_ns=2_000_000_000, rescan_window_ns=5 * MINUTE,
                    retention_margin_ns=MINUTE, rescan_interval_s=0)  # re-scan on every poll
    for k in range(10):  # ten bursts, ten minutes apart
        send(world, 30, start=T0 + k * 10 * MINUTE, step_ns=MINUTE // 10, first=30 * k)
        assert intake.poll() == 30
    expect_all(intake, 300)
    cursor = intake.reader.cursor_ns
    [(kept, oldest)] = store.query("SELECT COUNT(*), MIN(created_at_ns) FROM mixin_snapshots_seen")
    assert oldest >= cursor - 6 * MINUTE and kept <= 61
    assert intake.poll() == 0 and intake.poll(rescan=True) == 0


def test_a_page_missing_a_snapshot_we_hold_is_a_gap(world, tmp_path):
    send(world, 40, start=T0)
    intake = Intake(world, SqliteStore(tmp_path / "s.db"))
    assert intake.poll() == 40
    with world.state.lock:  # the server "forgets" one it served before
        lost = next(s for s in world.state.snapshots if s.memo == b"m20" and s.user_id == world.bot["app_id"])
        world.state.snapshots.remove(lost)
    send(world, 5, start=T0 + MINUTE, first=40)
    with pytest.raises(SnapshotPageError) as e:
        intake.poll()
    assert e.value.halt.fault == PageFault.GAP and lost.snapshot_id in e.value.halt.detail
    assert len(intake.memos()) == 40


def test_bad_arguments_are_refused(world, tmp_path):
    async def main():
        async with world.client() as c:
            for kw in ({"overlap_ns": 0}, {"overlap_ns": 10, "rescan_window_ns": 5}, {"retention_margin_ns": -1},
                       {"page_limit": 0}, {"page_limit": 501}):
                with pytest.raises(ValueError):
                    SnapshotReader(c, SqliteStore(tmp_path / "x.db"), **kw)

    run(main())


def test_a_malformed_item_halts_and_keeps_nothing_of_its_page(world, tmp_path):
    send(world, 5, start=T0)
    with world.state.lock:
        bad = next(s for s in world.state.snapshots if s.memo == b"m3" and s.user_id == world.bot["app_id"])
        good_json = bad.to_json
        bad.to_json = lambda: {**good_json(), "created_at": "yesterday"}
    intake = Intake(world, SqliteStore(tmp_path / "s.db"))
    with pytest.raises(SnapshotPageError) as e:
        intake.poll()
    assert e.value.halt.fault == PageFault.MALFORMED and intake.memos() == []


def test_the_sim_command_serves_its_quirks(tmp_path):
    """`mixmaker sim mixin --snapshots-quirk ignore-order --snapshot-time-step 0.000001`: a server
    process that answers newest first, with times cut to the microsecond; a reader halts on it."""
    import json
    import re
    import subprocess
    import sys
    import urllib.request

    from mixmaker.mixin import Keystore, MixinClient

    def post(url: str, body: dict) -> dict:
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    ks_path = tmp_path / "ks.json"
    proc = subprocess.Popen([sys.executable, "-m", "mixmaker.cli", "sim", "mixin", "--port", "0", "--keystore-out",
                             str(ks_path), "--snapshots-quirk", "ignore-order", "--snapshot-time-step", "0.000001"],
                            stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for _ in range(5):
            m = re.search(r"on (http://127\.0\.0\.1:\d+)", proc.stderr.readline())
            if m:
                url = m.group(1)
                break
        assert url, "the server did not report its address"
        ks = Keystore.from_file(ks_path)
        alice = post(url + "/_sim/users", {"full_name": "alice"})["data"]["user_id"]
        post(url + "/_sim/deposits", {"user_id": alice, "asset_id": BTC, "amount": "1"})
        for n in range(3):
            post(url + "/_sim/transfers", {"from": alice, "to": ks.app_id, "asset_id": BTC, "amount": f"0.{n + 1}"})

        async def main():
            async with MixinClient(ks, url) as c:
                page = await c.snapshots(offset_ns=0, order="ASC")
                with pytest.raises(SnapshotPageError, match="descending"):
                    await SnapshotReader(c, SqliteStore()).poll(lambda tx, s: None)
                return page

        page = run(main())
        assert [str(s.amount) for s in page] == ["0.30000000", "0.20000000", "0.10000000"]
        assert all(s.created_at_ns % 1000 == 0 for s in page)
    finally:
        proc.terminate()
        proc.wait(10)
