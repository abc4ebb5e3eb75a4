"""Durable state: one small interface (`Store`) and its embedded default (`SqliteStore`).

The order journal uses it now and the ledger will too. The interface is kept to what a
PostgreSQL implementation can offer unchanged: transactions, parameterised statements with
`?` placeholders, and versioned migrations per component.
"""

from mixmaker.store.base import Store, StoreError
from mixmaker.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "StoreError"]
