"""Waiting for a `mixmaker sim all` process started by a test."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path


def wait_ready(proc: subprocess.Popen, state: Path, timeout: float = 60) -> dict:  # type: ignore[type-arg]
    """The credentials file written by this very process (its pid), once it listens."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"sim all exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            d = json.loads((state / "sims.json").read_text())
            if d["pid"] == proc.pid:
                return d
        except (FileNotFoundError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("sim all did not become ready")
