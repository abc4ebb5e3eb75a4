"""Durable state: one small interface (`Store`) and its embedded default (`SqliteStore`).

The order journal uses it now and the ledger will too. The interface is kept to what a
PostgreSQL implementation can offer unchanged: transactions, parameterised statements with
`?` placeholders, and versioned migrations per component. `Leases` (store/lease.py) gives one
holder at a time for a named resource across the processes sharing a store.
"""

from mixmaker.store.base import Store, StoreError
from mixmaker.store.lease import Lease, LeaseBusyError, LeaseError, LeaseLostError, Leases
from mixmaker.store.sqlite import SqliteStore

__all__ = ["Lease", "LeaseBusyError", "LeaseError", "LeaseLostError", "Leases", "SqliteStore", "Store", "StoreError"]
