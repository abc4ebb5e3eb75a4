"""The store interface every durable component programs against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from mixmaker.errors import MixmakerError

Row = tuple[Any, ...]


class StoreError(MixmakerError):
    """The store cannot be opened, migrated or written: stop, do not carry on in memory."""


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs one statement; returns the number of rows it changed."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]:
        """All statements inside commit together or not at all; durable when the block exits."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def migrate(self, component: str, steps: Iterable[str]) -> int:
        """Applies the component's schema steps not applied yet (by position); returns its version."""

    def close(self) -> None: ...
