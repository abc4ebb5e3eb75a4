"""Leases in the store: one holder at a time, across tasks and across real processes on one
SQLite file; expiry hands a dead holder's lease to the next taker with a higher fence."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import mixmaker
from mixmaker.store import LeaseBusyError, LeaseLostError, Leases, SqliteStore, StoreError

# The children import mixmaker from where this process did (the installed wheel in CI, the source
# tree with its built extension in development).
REPO_PYTHON = os.path.dirname(os.path.dirname(os.path.abspath(mixmaker.__file__)))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000_000_000

    def __call__(self) -> int:
        return self.now


def test_one_holder_at_a_time_and_the_next_one_gets_a_higher_fence(tmp_path):
    store = SqliteStore(tmp_path / "l.db")
    clock = FakeClock()
    a, b = Leases(store, owner="a", ttl_s=10, clock=clock), Leases(store, owner="b", ttl_s=10, clock=clock)
    la = a.try_acquire("job:1")
    assert la is not None and la.fence == 1
    assert b.try_acquire("job:1") is None and a.try_acquire("job:1") is None  # not even a second holder of a
    assert b.try_acquire("job:2") is not None  # other names are independent
    clock.now += 9_000_000_000
    la = a.renew(la)
    assert la is not None
    clock.now += 9_000_000_000  # 18 s after taking it, 9 s after renewing: still a's
    assert b.try_acquire("job:1") is None
    a.release(la)
    lb = b.try_acquire("job:1")
    assert lb is not None and lb.fence == 2
    assert a.renew(la) is None  # released and taken: a's renewal fails
    with store.transaction() as tx:
        assert b.holds(tx, lb) and not a.holds(tx, la)


def test_an_expired_lease_is_taken_over_and_its_old_holder_notices(tmp_path):
    store = SqliteStore(tmp_path / "l.db")
    clock = FakeClock()
    a, b = Leases(store, owner="a", ttl_s=5, clock=clock), Leases(store, owner="b", ttl_s=5, clock=clock)
    la = a.try_acquire("pay:BTC")
    clock.now += 5_000_000_000 - 1
    assert b.try_acquire("pay:BTC") is None
    clock.now += 1  # exactly at expiry
    lb = b.try_acquire("pay:BTC")
    assert lb is not None and lb.fence == la.fence + 1 and lb.owner != la.owner
    assert a.renew(la) is None
    a.release(la)  # a late release by the old holder frees nothing
    assert b.holder("pay:BTC") == (lb.owner, lb.expires_at_ns)


def test_hold_excludes_tasks_of_one_process_and_renews_in_the_background(tmp_path):
    store = SqliteStore(tmp_path / "l.db")
    leases = Leases(store, owner="p", ttl_s=0.3)
    inside, overlaps = [0], [0]

    async def work(n: int) -> None:
        async with leases.hold("pay:ETH") as held:
            inside[0] += 1
            overlaps[0] = max(overlaps[0], inside[0])
            await asyncio.sleep(0.25)  # close to the TTL: only background renewal keeps it
            held.check()
            with store.transaction() as tx:
                assert held.holds(tx)
            inside[0] -= 1

    async def main() -> None:
        await asyncio.gather(*(work(n) for n in range(4)))

    asyncio.run(main())
    assert overlaps[0] == 1
    assert leases.holder("pay:ETH") is None  # released at the end


def test_a_busy_lease_is_waited_for_then_refused_with_its_holder(tmp_path):
    store = SqliteStore(tmp_path / "l.db")
    first, second = Leases(store, owner="first", ttl_s=30), Leases(store, owner="second", ttl_s=30)
    assert first.try_acquire("job") is not None

    async def main() -> None:
        async with second.hold("job", wait_s=0.2, poll_s=0.02):
            pass

    with pytest.raises(LeaseBusyError, match="held by 'first#1'") as e:
        asyncio.run(main())
    assert isinstance(e.value, StoreError)


def test_a_holder_whose_lease_was_taken_finds_out(tmp_path):
    store = SqliteStore(tmp_path / "l.db")
    leases = Leases(store, owner="slow", ttl_s=0.3)

    async def main() -> None:
        async with leases.hold("job") as held:
            with store.transaction() as tx:  # another holder took it (as after a long pause)
                tx.execute("UPDATE leases SET owner = 'thief', fence = fence + 1 WHERE name = 'job'")
            await asyncio.sleep(0.35)  # the next renewal fails
            with store.transaction() as tx:
                assert not held.holds(tx)
            held.check()

    with pytest.raises(LeaseLostError, match="'job'"):
        asyncio.run(main())
    assert store.query("SELECT owner FROM leases") == [("thief",)]  # our release did not free theirs


COUNTER_WORKER = textwrap.dedent("""
    import asyncio, sys
    from mixmaker.store import Leases, SqliteStore

    async def main(db, rounds):
        store = SqliteStore(db)
        leases = Leases(store, ttl_s=5)
        for _ in range(rounds):
            async with leases.hold("counter", poll_s=0.005):
                # read, yield, write: a lost update unless nobody else is in here
                [(v,)] = store.query("SELECT v FROM counter")
                await asyncio.sleep(0.003)
                with store.transaction() as tx:
                    tx.execute("UPDATE counter SET v = ?", (v + 1,))

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")


def test_processes_on_one_sqlite_file_take_turns(tmp_path):
    db = tmp_path / "l.db"
    store = SqliteStore(db)
    store.migrate("counter", ["CREATE TABLE counter (v INTEGER NOT NULL)", "INSERT INTO counter VALUES (0)"])
    env = {**os.environ, "PYTHONPATH": REPO_PYTHON}
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER_WORKER, str(db), "15"], env=env, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert store.query("SELECT v FROM counter") == [(45,)]


HOLDER = textwrap.dedent("""
    import sys, time
    from mixmaker.store import Leases, SqliteStore

    lease = Leases(SqliteStore(sys.argv[1]), owner="doomed", ttl_s=float(sys.argv[2])).try_acquire("job")
    print(lease.fence, lease.expires_at_ns, flush=True)
    time.sleep(3600)
""")


def test_a_killed_holder_loses_the_lease_only_when_it_expires(tmp_path):
    db = tmp_path / "l.db"
    env = {**os.environ, "PYTHONPATH": REPO_PYTHON}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "1.5"], env=env, stdout=subprocess.PIPE,
                              text=True)
    fence, expires = map(int, holder.stdout.readline().split())
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(30)
    leases = Leases(SqliteStore(db), owner="heir", ttl_s=5)
    early = leases.try_acquire("job")
    if early is not None:  # only possible if this machine was so slow that 1.5 s passed already
        assert time.time_ns() >= expires
    taken = early or asyncio.run(_take(leases))
    assert taken.fence == fence + 1 and taken.owner.startswith("heir")


async def _take(leases: Leases):
    async with leases.hold("job", poll_s=0.02) as held:
        return held.leases[0]
