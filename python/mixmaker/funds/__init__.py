"""The funds layer: the ledger of whose money is where, moves between Mixin and the exchanges,
and reconciliation against what they really hold."""
