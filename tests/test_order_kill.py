"""A real process kill (os._exit) at each step of an order's life; a new process's tracker
reconciles with the venue and ends equal to it, every fill counted once."""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from fake_venue import FakeVenue
from mixmaker.orders import ClientOrderTracker
from mixmaker.store import SqliteStore
from mixmaker.orders import OrderState

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    "step,nth",
    [("recorded", 1), ("submitted", 1), ("acked", 1), ("fill_recorded", 1), ("recorded", 2), ("submitted", 2),
     ("acked", 2), ("cancel_requested", 1), ("cancel_acked", 1), ("cancel_requested", 2)],
)
def test_killed_process_restarts_equal_to_the_venue(tmp_path, step, nth):
    db, vpath = str(tmp_path / "orders.db"), str(tmp_path / "venue.pickle")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(HERE / "kill_worker.py"), db, vpath, step, str(nth)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 137, f"the worker did not die at {step}#{nth}: rc={proc.returncode} {proc.stderr[-2000:]}"

    venue = FakeVenue()
    with open(vpath, "rb") as f:
        venue.__dict__.update(pickle.load(f))
    fills: dict = {}
    t = ClientOrderTracker(venue, SqliteStore(db), inflight_timeout=0.0, fill_sink=lambda f: fills.setdefault(f.key, f),
                           lost_retry_s=0.001, lost_retry_max_s=0.001)

    async def recover():
        await t.start()
        for _ in range(3):
            await t.poll()
        # Later, past every create's recvWindow: what the venue never got can be proven unsent.
        venue.clock_offset_ms += venue.recv_window_ms + t.unsent_margin_ms + 1000
        for _ in range(3):
            await asyncio.sleep(0.002)
            await t.poll()

    asyncio.run(recover())
    assert set(t.open_orders()) == venue.open_ids()
    keys = [f.key for f in t.journal.fills()]
    assert len(keys) == len(set(keys)) == len(venue.trades)
    for cid, filled in venue.filled_by_order().items():
        assert t.get(cid).filled == filled
    for cid in t.orders.ids():
        if cid not in venue.orders:
            assert t.get(cid).state == OrderState.FAILED, "journaled, never sent: failed once past its window, not LOST"
        assert t.get(cid).state != OrderState.LOST
