"""Errors of the user layer."""

from mixmaker.errors import MixmakerError


class UserError(MixmakerError):
    """The root of the user layer's errors."""


class CatalogError(UserError, ValueError):
    """A catalog (markets, presets, pools, limits) that cannot run; the message names what is wrong."""


class IllegalTransitionError(UserError):
    """An event a user order's state does not accept (a bug in the caller, never a user's input)."""


class PoolNotReadyError(UserError):
    """A pool that cannot be valued now (no synced mid): mint and burn wait and retry."""
