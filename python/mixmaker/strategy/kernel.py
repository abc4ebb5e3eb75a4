"""The Cython proposal kernel (`mixmaker._proposal`), importable once the core has registered
it; strategy code imports it from here."""

import mixmaker._core  # noqa: F401  registers the Cython modules
from mixmaker._proposal import (
    MAX_LEVELS_PER_SIDE,
    SCALE,
    ProposalInputError,
    ProposalParams,
    RawProposal,
    all_within_tolerance,
    finish,
    inventory_skew,
    propose,
    within_tolerance,
)

__all__ = [
    "MAX_LEVELS_PER_SIDE",
    "SCALE",
    "ProposalInputError",
    "ProposalParams",
    "RawProposal",
    "all_within_tolerance",
    "finish",
    "inventory_skew",
    "propose",
    "within_tolerance",
]
