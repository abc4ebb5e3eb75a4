"""pytest-benchmark setup for the micro-benchmarks (`pytest benches/ --benchmark-only`): the
test helpers they share (the pure-Python order model, the Decimal PMM) on the path, the
recordings' folder, and a warning when other processes used the CPU while they ran (the box is
shared with builds)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from cpu_meter import CpuMeter  # noqa: E402

_METER: CpuMeter | None = None


def data_dir() -> Path:
    """`$MIXMAKER_DATA`, else `../shared/data/market` next to the repository (as the tests)."""
    return Path(os.environ.get("MIXMAKER_DATA", HERE.parent.parent / "shared" / "data" / "market"))


def pytest_sessionstart(session: Any) -> None:
    global _METER
    _METER = CpuMeter()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    other = _METER.other_cores() if _METER is not None else None
    if other is not None:
        line = f"other processes used {other:.2f} cores while the benchmarks ran"
        terminalreporter.write_line(line + ("  ** WARNING: machine busy, timings inflated **" if other > 0.15 else ""))
