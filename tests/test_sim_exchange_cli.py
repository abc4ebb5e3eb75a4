"""`mixmaker sim exchange` standalone: it serves, its synthetic market moves, SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_standalone_serves_and_stops_on_sigterm() -> None:
    cmd = [sys.executable, "-m", "mixmaker.cli", "sim", "exchange", "--port", "0", "--seed", "4",
           "--account", "bob:bob-key:bob-secret", "--faults", "diff_skip=0.1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        rest = lines[0].split()[1]  # "rest   http://127.0.0.1:P/api/v3 ..."
        assert rest.startswith("http://127.0.0.1:") and lines[2].startswith("ws-api ws://127.0.0.1:")
        assert "bob (key bob-key)" in lines[3] and "bob-secret" not in "".join(lines)
        assert _get(f"{rest}/ping") == {}
        first = _get(f"{rest}/depth?symbol=BTCUSDT&limit=5")
        assert len(first["bids"]) == 5 and len(first["asks"]) == 5
        while (later := _get(f"{rest}/depth?symbol=BTCUSDT&limit=5"))["lastUpdateId"] == first["lastUpdateId"]:
            time.sleep(0.02)  # the synthetic market moves on its own
        assert later["lastUpdateId"] > first["lastUpdateId"]
        funded = urllib.request.Request(f"{rest[:-len('/api/v3')]}/sim/deposit", method="POST",
                                        data=b"account=bob&coin=USDT&amount=12.5")
        with urllib.request.urlopen(funded, timeout=5) as r:
            assert json.loads(r.read())["id"] == "dep1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--faults", "bogus=1"], "unknown fault"),
        (["--account", "only-a-name"], "NAME:KEY:SECRET"),
        (["--feed", "/nonexistent/feed.gz"], "feed.gz"),
    ],
)
def test_bad_arguments_exit_2(extra: list[str], message: str) -> None:
    cmd = [sys.executable, "-m", "mixmaker.cli", "sim", "exchange", "--port", "0", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and message in done.stderr
