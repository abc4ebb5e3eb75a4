"""One error root: every exception class mixmaker defines derives from `MixmakerError`, so an
embedding bot can catch ours (`except MixmakerError`) apart from everything else."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import mixmaker
from mixmaker.errors import MixmakerError

# Modules that need an optional dependency; skipped (not failed) when it is missing.
_OPTIONAL = {"matplotlib"}


def _import_all() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(mixmaker.__path__, "mixmaker."):
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as e:
            if e.name not in _OPTIONAL:
                raise
            continue
        names.append(info.name)
    return names


def _defined_exceptions() -> dict[str, type[BaseException]]:
    _import_all()
    found: dict[str, type[BaseException]] = {}
    # sys.modules, not only the walk: the Cython modules (mixmaker._clock, ...) live in the
    # extension and are registered there, not found as files.
    for name, module in list(sys.modules.items()):
        if not (name == "mixmaker" or name.startswith("mixmaker.")) or module is None:
            continue
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseException)
                    and value.__module__.startswith("mixmaker")):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_module_imports() -> None:
    assert len(_import_all()) > 50


def test_every_error_derives_from_the_root() -> None:
    found = _defined_exceptions()
    # Errors of each layer and of the compiled parts are all found (the scan is not vacuous).
    for expected in ("mixmaker.orders.errors.VenueError", "mixmaker.mixin.errors.MixinError",
                     "mixmaker.connectors.limiter.RateLimitError", "mixmaker._clock.ClockError",
                     "mixmaker._proposal.ProposalInputError", "mixmaker.money.AmountError",
                     "mixmaker.sim.exchange.errors.ExchangeError", "mixmaker._core.InvalidTransitionError"):
        assert expected in found
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, MixmakerError))
    assert outside == []


@pytest.mark.parametrize("name, builtin", [
    ("mixmaker.mixin.keystore.KeystoreError", ValueError),
    ("mixmaker.mixin.address.AddressError", ValueError),
    ("mixmaker.mixin.kernel.KernelDecodeError", ValueError),
    ("mixmaker.money.AmountError", ValueError),
    ("mixmaker.markets.MarketRulesError", ValueError),
    ("mixmaker.sim.exchange.faults.UnknownFaultError", ValueError),
    ("mixmaker.strategy.errors.ConfigError", ValueError),
    ("mixmaker.orders.errors.TrackerNotReadyError", RuntimeError),
    ("mixmaker.orders.errors.JournalCorruptError", RuntimeError),
    ("mixmaker.backtest.runner.BacktestError", RuntimeError),
    ("mixmaker.backtest.plot.PlotUnavailableError", RuntimeError),
    ("mixmaker._clock.ClockError", RuntimeError),
    ("mixmaker._proposal.ProposalInputError", ValueError),
    ("mixmaker.replay.errors.RecordingNotFoundError", FileNotFoundError),
])
def test_builtin_bases_are_kept(name: str, builtin: type[BaseException]) -> None:
    """An error that was a ValueError (RuntimeError, ...) still is: callers' `except ValueError` keep working."""
    cls = _defined_exceptions()[name]
    assert issubclass(cls, builtin) and issubclass(cls, MixmakerError)


def test_mixin_amount_error_is_the_money_one() -> None:
    from mixmaker import money
    from mixmaker.mixin import amounts

    assert amounts.AmountError is money.AmountError
    with pytest.raises(MixmakerError):
        amounts.to_units("1.000000001")
