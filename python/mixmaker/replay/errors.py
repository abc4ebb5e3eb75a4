"""Typed errors of the replay tools: each says which file and what a person can do about it."""

from __future__ import annotations

from pathlib import Path

from mixmaker.errors import MixmakerError


class ReplayError(MixmakerError):
    """Base class: a replay could not start or could not read its input."""


class RecordingNotFoundError(ReplayError, FileNotFoundError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"no such recording: {path}")
        self.path = path


class UnreadableRecordingError(ReplayError):
    """The file exists but is not a recording we can read (bad gzip, empty zip, I/O error...)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"cannot read recording {path}: {why}")
        self.path = path
        self.why = why


class UnknownVenueError(ReplayError):
    """The venue rule or the decimals could not be detected and were not given."""

    def __init__(self, path: Path | str, why: str) -> None:
        super().__init__(
            f"cannot tell the venue of {path}: {why}; "
            "pass --rule, --price-decimals and --size-decimals"
        )
        self.path = path
        self.why = why


class BookSettingsError(ReplayError):
    """The core refused the rule or decimals (e.g. more decimals than an i64 can scale)."""

    def __init__(self, rule: str, price_decimals: int, size_decimals: int, cause: BaseException) -> None:
        super().__init__(
            f"cannot build a {rule} book with price {price_decimals} dp and size {size_decimals} dp: {cause}"
        )


class CoreNotBuiltError(ReplayError):
    """`mixmaker.book` (the Rust extension) is missing from this installation."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            f"the compiled core is not available ({cause}); build it with `pip install .`"
        )
