"""`mixmaker demo`: the whole cycle, as a person runs it.

- headless, with a state folder: progress lines; SIGKILLed mid-run and run again with the same
  command, it carries on to a clean finish; `--json` has the issue's shape, difference 0 for every
  asset, every user order settled, the refund sent; run once more, it says it is done.
- the dashboard in a real terminal (tmux): its panes are there and change, and the run ends clean.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("picows", reason="the connector and the simulator need picows")

from engine_helpers import ROOT, env, order_states, stop, wait_until  # noqa: E402

from mixmaker.engine.sims import folder_in_use  # noqa: E402

DURATION = "30"


def demo_cmd(state: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mixmaker.cli", "demo", "--duration", DURATION, "--users", "4", "--seed", "5",
            "--state", str(state), *extra]


def check_report(report: dict) -> None:  # type: ignore[type-arg]
    assert set(report) == {"assets", "user_orders", "reconciliation", "ok"}
    assert set(report["assets"]) == {"BTC", "USDT", "ETH"}  # ETH: Mixin's fee for moving USDT (ERC-20)
    for sym, a in report["assets"].items():
        assert set(a) == {"ledger", "observed", "difference"}, sym
        assert set(a["ledger"]) == {"payments", "refunds", "payouts", "fees", "bot_share", "trading_result", "held"}
        assert {"users", "bot_wallet", "exchange", "fee_payers"} <= set(a["observed"])
        assert len(a["observed"]["users"]) == 4 and len(a["observed"]["fee_payers"]) == 1
        assert all(set(u) == {"before", "after"} for u in a["observed"]["users"].values())
        assert a["difference"] == "0", (sym, json.dumps(report["reconciliation"], indent=1))
        # nothing is held for anyone: at most the rounding account's remainders of integer divisions (units)
        assert Decimal(a["ledger"]["held"]) <= Decimal("0.00000010"), (sym, a["ledger"])
    assert len(report["user_orders"]) == 3
    for u in report["user_orders"]:
        assert set(u) == {"id", "state", "statement"}
        assert u["state"] == "settled"
        st = u["statement"]
        assert st["paid"] and st["payouts"] and st["mints"] and st["burn"] and not st["owed_now"] and not st["problems"]
    assert report["assets"]["USDT"]["ledger"]["refunds"] == "50"  # the bad memo, refunded in full
    # the funds travelled by chain: network fees were paid and booked in every asset that moved
    assert all(report["assets"][a]["ledger"]["fees"] != "0" for a in ("BTC", "USDT", "ETH"))
    assert report["assets"]["ETH"]["ledger"]["payments"] == "0.05"  # the operator's fee float
    assert report["ok"] is True


def test_headless_demo_killed_mid_run_resumes_to_a_clean_finish(tmp_path: Path) -> None:
    state, out = tmp_path / "demo", tmp_path / "report.json"
    db = state / "mixmaker.db"
    first_log = tmp_path / "first.log"
    with open(first_log, "wb") as f:
        first = subprocess.Popen(demo_cmd(state, "--headless"), stdout=f, stderr=subprocess.STDOUT, env=env())
    try:
        # mid-run: every order active, and a headless progress line has said so
        wait_until(lambda: len(order_states(db)) == 3 and set(order_states(db).values()) == {"active"}
                   and "orders: active 3" in first_log.read_text(), "the demo's orders active", 120)
        first.send_signal(signal.SIGKILL)  # no goodbye: the next run finds the world as it was
        first.wait(10)
    finally:
        stop(first, signal.SIGKILL, 10)
    assert folder_in_use(state / "sims")  # the simulators outlived the demo's process
    progress = first_log.read_text()
    assert "orders: active 3" in progress and "reconciliation" in progress  # headless progress lines
    second = subprocess.run(demo_cmd(state, "--headless", "--json", str(out)), capture_output=True, text=True,
                            env=env(), timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "ok: every unit accounted for, every user paid" in second.stdout
    check_report(json.loads(out.read_text()))
    assert not folder_in_use(state / "sims")  # stopped at the end
    again = subprocess.run(demo_cmd(state, "--headless"), capture_output=True, text=True, env=env(), timeout=60)
    assert again.returncode == 0 and "finished already" in again.stdout
    assert (state / "demo-report.png").stat().st_size > 10_000


def _tmux() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (tests/run.sh installs it with apt-get where it can)")
    return tmux


def test_dashboard_in_a_real_terminal(tmp_path: Path) -> None:
    tmux = _tmux()
    sock = f"mixmaker-test-{tmp_path.name}"[-60:]
    state, out = tmp_path / "demo", tmp_path / "report.json"
    envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in env().items() if k in ("PYTHONPATH", "PATH", "HOME"))
    # COLUMNS/LINES from the test runner would pin rich to 80x24: the terminal's own size counts
    cmd = f"env -u COLUMNS -u LINES {envs} TERM=xterm-256color {shlex.join(demo_cmd(state, '--json', str(out)))}; sleep 60"
    clean = {k: v for k, v in env().items() if k not in ("COLUMNS", "LINES", "TMUX")}
    subprocess.run([tmux, "-L", sock, "new-session", "-d", "-s", "demo", "-x", "180", "-y", "55", cmd], check=True,
                   cwd=ROOT, env=clean)
    try:
        screens = []
        end = time.monotonic() + 240
        while not out.exists() and time.monotonic() < end:
            time.sleep(3)
            screens.append(subprocess.run([tmux, "-L", sock, "capture-pane", "-p", "-t", "demo"], capture_output=True,
                                          text=True, check=True).stdout)
        (tmp_path / "screens.txt").write_text("\n=====\n".join(screens))
        assert out.exists(), screens[-1] if screens else "no screen"
        live = [s for s in screens if "books and our quotes" in s]
        assert len(live) >= 3, screens[-1]
        for pane in ("books and our quotes", "pools", "user orders", "moves in transit", "reconciliation and activity",
                     "binance:BTC/USDT", "tight", "wide"):
            assert any(pane in s for s in live), (pane, "\n=====\n".join(live))
        assert len(set(live)) >= 3  # it changes as the run goes
        assert any("active" in s for s in live) and any("synced" in s for s in live)
        time.sleep(1)
        final = subprocess.run([tmux, "-L", sock, "capture-pane", "-p", "-t", "demo"], capture_output=True, text=True,
                               check=True).stdout
        assert "the money cycle" in final and "every user paid" in final
        check_report(json.loads(out.read_text()))
    finally:
        subprocess.run([tmux, "-L", sock, "kill-server"], capture_output=True)
        if folder_in_use(state / "sims"):
            from mixmaker.engine.sims import read_sims

            try:
                import os

                os.kill(read_sims(state / "sims").pid, signal.SIGTERM)
            except (OSError, Exception):  # noqa: BLE001
                pass
