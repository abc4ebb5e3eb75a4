"""Errors of the funds layer."""

from mixmaker.errors import MixmakerError


class FundsError(MixmakerError):
    """The root of the funds layer's errors."""


class LedgerError(FundsError):
    """A transaction the ledger refuses: unbalanced, malformed, or in conflict with its key."""


class UnbalancedError(LedgerError):
    """A transaction whose entries do not sum to zero in some asset."""


class LedgerConflictError(LedgerError):
    """An idempotency key already posted with other entries: one cause, two effects (a bug)."""


class OverdraftError(LedgerError):
    """A holding below zero or a claim above zero: more would leave than is there."""
