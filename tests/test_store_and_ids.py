"""The SQLite store (atomic transactions, versioned migrations) and client order ids."""

from __future__ import annotations

import pytest

from mixmaker.orders import ClientIdError, ClientIdGenerator
from mixmaker.orders.ids import MAX_CLIENT_ID_LEN, generator_for
from mixmaker.store import SqliteStore, StoreError


def test_a_failed_transaction_leaves_nothing(tmp_path):
    s = SqliteStore(tmp_path / "s.db")
    s.migrate("t", ["CREATE TABLE t (k TEXT PRIMARY KEY)"])
    with s.transaction() as tx:
        tx.execute("INSERT INTO t VALUES ('a')")
    with pytest.raises(StoreError):
        with s.transaction() as tx:
            tx.execute("INSERT INTO t VALUES ('b')")
            tx.execute("INSERT INTO t VALUES ('a')")  # primary key clash: the whole block rolls back
    with pytest.raises(KeyError):
        with s.transaction() as tx:
            tx.execute("INSERT INTO t VALUES ('c')")
            raise KeyError("caller's own error")
    assert s.query("SELECT k FROM t ORDER BY k") == [("a",)]
    s.close()
    assert SqliteStore(tmp_path / "s.db").query("SELECT k FROM t") == [("a",)]


def test_migrations_apply_once_in_order_and_refuse_a_newer_schema(tmp_path):
    s = SqliteStore(tmp_path / "m.db")
    steps = ["CREATE TABLE a (x INTEGER)", "ALTER TABLE a ADD COLUMN y INTEGER"]
    assert s.migrate("comp", steps[:1]) == 1
    assert s.migrate("comp", steps) == 2  # only the new step runs
    assert s.migrate("comp", steps) == 2
    assert [r[1] for r in s.query("PRAGMA table_info(a)")] == ["x", "y"]
    with pytest.raises(StoreError, match="newer than this code"):
        s.migrate("comp", steps[:1])


def test_client_ids_fit_every_venue_and_are_recognised():
    for venue, limit in MAX_CLIENT_ID_LEN.items():
        g = generator_for(venue, "mmk")
        ids = [g.next() for _ in range(1000)]
        assert len(set(ids)) == 1000 and ids == sorted(ids)
        assert all(len(i) <= limit and i.isalnum() and g.is_ours(i) for i in ids)
    other = ClientIdGenerator("mmk", 36, "ZZZZ")
    mine = generator_for("binance", "mmk", instance="AAAA")
    # Same prefix, same microsecond, two processes: different ids, both recognised as ours.
    a, b = mine.next(now_us=1_800_000_000_000_000), other.next(now_us=1_800_000_000_000_000)
    assert a != b and mine.is_ours(b) and mine.nonce_of(b) == mine.nonce_of(a)
    assert not mine.is_ours("x-MG43PCSN123") and not mine.is_ours("mmk")


def test_client_id_errors_say_what_to_change():
    with pytest.raises(ClientIdError, match="need 29 characters but the venue allows 28"):
        ClientIdGenerator("abcdefghijklmnop", 28, "AAAA")
    with pytest.raises(ClientIdError, match="letters or digits"):
        ClientIdGenerator("mm-1", 36)
    with pytest.raises(ClientIdError):
        ClientIdGenerator("mm", 36, instance="ab")
