"""The one error root: every error mixmaker raises on purpose derives from `MixmakerError`, so an
embedding bot can catch ours apart from everything else (`except MixmakerError`)."""

from mixmaker._core import MixmakerError

__all__ = ["MixmakerError"]
