"""SQLite, the embedded default store: WAL journal, `synchronous=FULL` (a commit that returned
survives a power cut, not only a process kill), one connection per store object."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mixmaker.store.base import Row, StoreError


class _Tx:
    __slots__ = ("_cur",)

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._cur.execute(sql, params).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._cur.execute(sql, params).fetchall()


class SqliteStore:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        try:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            self._db.execute("PRAGMA busy_timeout=5000")
            if self.path != ":memory:":
                self._set_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the SQLite store at {self.path}: {e}") from e
        self._depth = 0

    def _set_wal(self) -> None:
        """WAL is a property of the file: once set it stays. Switching needs an exclusive lock, and
        SQLite may answer "locked" at once (no busy wait) when two processes open a new file together,
        so the switch is retried for as long as the busy timeout."""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        if self._depth:
            raise StoreError("nested transactions are not supported: finish the outer one first")
        cur = self._db.cursor()
        self._depth = 1
        try:
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(cur)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"store write failed ({self.path}): {e}") from e
        finally:
            self._depth = 0
            cur.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"store read failed ({self.path}): {e}") from e

    def migrate(self, component: str, steps: Iterable[str]) -> int:
        steps = list(steps)
        with self.transaction() as tx:
            rows = tx.query("SELECT version FROM schema_versions WHERE component = ?", (component,))
            have = rows[0][0] if rows else 0
            if have > len(steps):
                raise StoreError(
                    f"the store's {component!r} schema is version {have}, newer than this code's {len(steps)}: "
                    "upgrade mixmaker or use another database"
                )
            for sql in steps[have:]:
                tx.execute(sql)
            tx.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, len(steps)),
            )
        return len(steps)

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"
