"""Sweeps: the grid syntax, every row equal to its combination run alone (on two processes),
the table, --json rows, the heat map, and clear errors."""

from __future__ import annotations

import gzip
import io
import json
from contextlib import redirect_stdout

import pytest

from conftest import REPO, recording_path
from mixmaker.backtest.sweep import SweepError, combinations, parse_sweep, run_one, run_sweep
from mixmaker.cli import main
from mixmaker.strategy import load_config

MAKER = REPO / "benches" / "maker_20hz.toml"


@pytest.fixture(scope="module")
def short_usdm(tmp_path_factory):
    head = gzip.open(recording_path("usdm"), "rb").readlines()[:15_000]
    out = tmp_path_factory.mktemp("sweep") / "usdm_head.gz"
    out.write_bytes(gzip.compress(b"".join(head)))
    return out


def test_axes_are_parsed_exactly():
    a, b, c, d = parse_sweep("bid_spread=0.0001..0.0005:5, order_levels=1..3,backtest.latency_ms=5|25,ask_spread=0.01")
    assert (a.section, a.name, a.values) == ("strategy", "bid_spread", ("0.0001", "0.0002", "0.0003", "0.0004", "0.0005"))
    assert b.values == ("1", "2", "3")
    assert (c.label, c.values) == ("backtest.latency_ms", ("5", "25"))
    assert d.values == ("0.01",)
    assert parse_sweep("bid_spread=0.1..0.2:3")[0].values == ("0.1", "0.15", "0.2")


@pytest.mark.parametrize("bad, why", [
    ("bid_spread", "expected name="), ("bid_spread=0.5..0.1:3", "backwards"), ("order_levels=1.5..3", "needs a count"),
    ("bid_spread=x..y:2", "not a number"), ("bid_spread=1|1", "repeated"), ("nope.x=1", "section"),
    ("bid_spread=1,bid_spread=2", "twice"), ("", "names no parameter"),
])
def test_bad_axes_are_refused(bad, why):
    with pytest.raises(SweepError, match=why):
        parse_sweep(bad)


def test_unknown_or_invalid_parameters_are_refused():
    cfg = load_config(MAKER)
    with pytest.raises(SweepError, match="not a strategy parameter"):
        combinations(cfg, parse_sweep("no_such_field=1..2"))
    with pytest.raises(SweepError, match="bid_spread"):
        combinations(cfg, parse_sweep("bid_spread=-1|1"))  # must be > 0


def test_every_row_equals_its_combination_run_alone(short_usdm):
    cfg = load_config(MAKER)
    axes = parse_sweep("bid_spread=0.002..0.01:3,order_levels=1..2")
    seen = []
    rows = run_sweep(cfg, short_usdm, axes, jobs=2, progress=lambda done, total: seen.append((done, total)))
    assert len(rows) == 6 and seen[-1] == (6, 6)
    combos = combinations(cfg, axes)
    assert [{k: r[k] for k in ("bid_spread", "order_levels")} for r in rows] == [p for p, _ in combos]
    for row, (params, c) in zip(rows, combos):
        assert row == run_one(str(short_usdm), params, c)
    assert len({r["pnl"] for r in rows}) > 1  # the spread matters
    assert all(float(r["max_drawdown"]) >= 0 and r["fills"] >= 0 for r in rows)


def test_cli_sweep_table_json_and_heat_map(short_usdm, tmp_path):
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["backtest", "--feed", str(short_usdm), "--config", str(MAKER), "--sweep",
                     "bid_spread=0.004|0.008", "--json", "--jobs", "1", "--no-progress"]) == 0
    rows = json.loads(out.getvalue())
    assert [r["bid_spread"] for r in rows] == ["0.004", "0.008"]
    assert set(rows[0]) == {"bid_spread", "pnl", "fills", "placed", "fill_ratio", "inventory_min", "inventory_max", "max_drawdown"}
    pytest.importorskip("matplotlib", reason="the heat map needs the optional matplotlib extra")
    png = tmp_path / "heat.png"
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["backtest", "--feed", str(short_usdm), "--config", str(MAKER), "--sweep",
                     "bid_spread=0.004|0.008,order_levels=1..2", "--plot", str(png), "--no-progress"]) == 0
    assert "max drawdown" in out.getvalue() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_sweep_errors_exit_2(short_usdm, capsys):
    assert main(["backtest", "--feed", str(short_usdm), "--config", str(MAKER), "--sweep", "bid_spread=oops"]) == 2
    assert "not a number" in capsys.readouterr().err
    assert main(["backtest", "--feed", str(short_usdm), "--config", str(MAKER), "--sweep", "bid_spread=1|2",
                 "--plot", "x.png"]) == 2
    assert "two parameters" in capsys.readouterr().err
    assert main(["backtest", "--feed", str(short_usdm)]) == 2
    assert "--config is required" in capsys.readouterr().err
