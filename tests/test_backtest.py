"""The backtest on the USD-M recording: it completes, its books balance, it is reproducible run
to run, the CLI prints it, and a feed with a gap stops the quoting."""

from __future__ import annotations

import gzip
import io
import json
import tomllib
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import REPO, recording_path
from mixmaker.backtest.feed import open_feed
from mixmaker.backtest.runner import run_backtest
from mixmaker.cli import main
from mixmaker.strategy import load_config, parse_config

PMM_TOML = REPO / "examples" / "pmm.toml"


@pytest.fixture(scope="module")
def usdm() -> Path:
    return recording_path("usdm")


@pytest.fixture(scope="module")
def pmm_result(usdm):
    return run_backtest(load_config(PMM_TOML), open_feed(usdm))


def test_usdm_backtest_completes_and_trades(pmm_result):
    r = pmm_result.report
    assert r["book"]["state"] == "SYNCED" and r["book"]["gaps"] == 0
    assert r["messages"] == 93_954 and r["ticks"] >= 340
    assert r["quotes"]["placed"] > 50 and r["fills"]["count"] > 10
    assert r["fills"]["maker"] == r["fills"]["count"]  # post-only quotes only make
    assert 0 < float(r["quotes"]["fill_ratio"]) < 1
    assert r["tracker"]["anomalies"] == 0
    assert r["executor"]["status"] == "TERMINATED" and r["executor"]["live_orders"] == 0


def test_usdm_backtest_books_balance(pmm_result):
    """The accounting (from our fills) and the venue's balances tell the same story:
    end value = start holdings at the final mid + total PnL; total = realised + unrealised - fees."""
    r = pmm_result.report
    p, pf = r["pnl"], r["portfolio"]
    total = Decimal(p["total"])
    assert total == Decimal(p["realised"]) + Decimal(p["unrealised"]) - Decimal(p["fees"])
    mid = Decimal(r["final_mid"])
    assert Decimal(pf["base_start"]) * mid + Decimal(pf["quote_start"]) + total == Decimal(pf["end_value"])
    assert Decimal(pf["base_end"]) - Decimal(pf["base_start"]) == Decimal(r["inventory"]["position"])
    assert Decimal(r["fills"]["buy_qty"]) - Decimal(r["fills"]["sell_qty"]) == Decimal(r["inventory"]["position"])
    # fees: 0.02 % of what we traded, rounded up per fill
    traded = Decimal(r["fills"]["buy_qty"]) * Decimal(r["fills"]["buy_avg_price"]) + \
        Decimal(r["fills"]["sell_qty"]) * Decimal(r["fills"]["sell_avg_price"])
    assert abs(Decimal(p["fees"]) - traded * Decimal("0.0002")) < Decimal("0.01")


def test_usdm_backtest_is_reproducible(usdm, pmm_result):
    again = run_backtest(load_config(PMM_TOML), open_feed(usdm))
    assert again.report == pmm_result.report
    assert [(s.t_ns, s.inventory, s.pnl) for s in again.samples] == [(s.t_ns, s.inventory, s.pnl) for s in pmm_result.samples]


def test_cli_json_and_plot(usdm, tmp_path):
    out = io.StringIO()
    png = tmp_path / "pmm.png"
    pytest.importorskip("matplotlib", reason="the PNG needs the optional matplotlib extra")
    with redirect_stdout(out):
        code = main(["backtest", "--feed", str(usdm), "--config", str(PMM_TOML), "--json", "--plot", str(png), "--no-progress"])
    assert code == 0
    doc = json.loads(out.getvalue())
    assert doc["pnl"]["currency"] == "USDT" and doc["timing"]["messages_per_s"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_goes_to_stderr(usdm):
    err = io.StringIO()
    run_backtest(load_config(PMM_TOML), open_feed(usdm), progress=True, progress_to=err)
    assert "messages" in err.getvalue() and "%" in err.getvalue()


def test_cli_refuses_a_config_that_does_not_fit_the_feed(usdm, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(PMM_TOML.read_text().replace("price_decimals = 2", "price_decimals = 1").replace('tick = "0.10"', 'tick = "0.1"'))
    assert main(["backtest", "--feed", str(usdm), "--config", str(bad)]) == 2
    assert "price 1 dp" in capsys.readouterr().err
    missing = tmp_path / "none.toml"
    assert main(["backtest", "--feed", str(usdm), "--config", str(missing)]) == 2


def test_a_gap_in_the_feed_stops_quoting_and_cancels(usdm, tmp_path):
    """Drop one diff in the middle: the book goes DESYNCED (no snapshot follows), the controller
    stops quoting and says why, and our resting orders are cancelled."""
    lines = gzip.open(usdm, "rb").read().splitlines(keepends=True)
    diffs = [i for i, line in enumerate(lines) if b"depthUpdate" in line]
    del lines[diffs[len(diffs) // 2]]
    gapped = tmp_path / "gap.gz"
    gapped.write_bytes(gzip.compress(b"".join(lines)))
    r = run_backtest(load_config(PMM_TOML), open_feed(gapped)).report
    assert r["book"]["state"] == "DESYNCED" and r["book"]["gaps"] == 1
    assert r["not_quoting_ticks"]["book DESYNCED"] > 100
    assert r["executor"]["live_orders"] == 0 and r["final_mid"] is None


def test_avellaneda_backtest_runs(usdm):
    r = run_backtest(load_config(REPO / "examples" / "avellaneda.toml"), open_feed(usdm)).report
    assert r["strategy"] == "avellaneda"
    assert r["not_quoting_ticks"]["warming up"] == 30  # the 30-tick estimator buffers
    assert r["quotes"]["placed"] > 10 and r["fills"]["count"] > 10 and r["tracker"]["anomalies"] == 0


def test_avellaneda_with_quarter_second_ticks_and_60ms_latency_runs(usdm):
    """Regression: these settings raised OverflowError in the intensity fit (float-noise distances)."""
    text = (REPO / "examples" / "avellaneda.toml").read_text()
    text = text.replace("tick_seconds = 1", 'tick_seconds = "0.25"').replace("latency_ms = 25", "latency_ms = 60")
    r = run_backtest(parse_config(tomllib.loads(text)), open_feed(usdm), samples=False).report
    assert r["ticks"] > 3 * Decimal(r["span_s"])  # four a second
    assert r["executor"]["action_errors"] == 0 and r["tracker"]["anomalies"] == 0
    assert r["quotes"]["placed"] > 10 and r["fills"]["count"] > 10


def test_strategy_code_does_not_know_about_backtests():
    src = REPO / "python" / "mixmaker" / "strategy"
    for f in src.glob("*.py"):
        text = f.read_text()
        assert "mixmaker.backtest" not in text and "SimVenue" not in text, f.name


def test_cli_help_lists_backtest_and_requires_its_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "backtest" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["backtest", "--config", str(PMM_TOML)])
    assert e.value.code == 2 and "--feed" in capsys.readouterr().err


def test_untimed_recording_is_refused(usdm, tmp_path, capsys):
    from mixmaker.backtest.feed import UntimedRecordingError

    head = gzip.open(usdm, "rb").readlines()[:100]
    bare = tmp_path / "bare.jsonl"  # the same messages without their receive times
    bare.write_bytes(b"".join(line.split(b" ", 1)[1] for line in head))
    with pytest.raises(UntimedRecordingError, match="no `<ts_ns> ` prefix"):
        run_backtest(load_config(PMM_TOML), open_feed(bare))
    assert main(["backtest", "--feed", str(bare), "--config", str(PMM_TOML)]) == 2
    assert "no `<ts_ns> ` prefix" in capsys.readouterr().err


def test_public_trade_fields():
    from mixmaker.backtest.runner import public_trade

    futures = (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":5,'
               b'"p":"61800.30","q":"0.006","X":"MARKET","m":false}}')
    assert public_trade(futures) == ("61800.30", "0.006", False)
    assert public_trade(futures.replace(b"MARKET", b"INSURANCE_FUND")) is None
    reordered = b'{"data":{"e":"trade","q":"0.5","m":true,"p":"100.10"}}'  # no pattern match: JSON
    assert public_trade(reordered) == ("100.10", "0.5", True)
