"""The backtest's fast path changes nothing it reports: the example configs, the 20 Hz maker and
ten variants (no latency, front of queue, taking, hanging orders with ping-pong, no
optimization, waiting for cancels, a price band, the spot and COIN-M recordings, Avellaneda
without latency; tests/data/backtest_variants/) give, report for
report, what the line-by-line runner gave before it (figures and digests recorded in
tests/data/backtest_before_h18.json; the two Avellaneda entries were recorded again when the
intensity fit began counting distances exactly, and say so in "changed_by"); a tape replays into a BookSync exactly as the lines do; the
tape cache is used only while fresh and never written into a read-only folder."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from conftest import REPO, recording_path
from mixmaker._core import BookSync, Tape, TapePlayer
from mixmaker.backtest.feed import open_feed
from mixmaker.backtest.runner import run_backtest
from mixmaker.backtest.feed import cache_paths
from mixmaker.cli import main
from mixmaker.replay import open_recording, route
from mixmaker.strategy import load_config

BEFORE = json.loads((REPO / "tests" / "data" / "backtest_before_h18.json").read_text())


def _digest(report: dict) -> str:
    return hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("config", sorted(BEFORE))
def test_reports_are_those_of_the_line_by_line_runner(config):
    """Every figure of the report (fills, PnL, the fill log, the inventory series, the executor's
    and the venue's counters) is what the runner before the tape, eager coroutines and the
    in-memory journal produced."""
    before = BEFORE[config]
    feed = recording_path(before.get("feed", "usdm"))
    r = run_backtest(load_config(REPO / config), open_feed(feed), samples=False).report
    assert r["pnl"] == before["pnl"]
    assert (r["fills"]["count"], r["quotes"]["placed"], r["quotes"]["cancelled"]) == (
        before["fills"], before["placed"], before["cancelled"])
    assert (r["quotes"]["kept_within_tolerance"], r["ticks"]) == (before["kept"], before["ticks"])
    assert _digest(r) == before["report_sha256"]


def test_samples_do_not_change_the_report():
    cfg = load_config(REPO / "examples" / "pmm.toml")
    feed = recording_path("usdm")
    full = run_backtest(cfg, open_feed(feed), samples=True)
    lean = run_backtest(cfg, open_feed(feed), samples=False)
    assert full.report == lean.report
    assert len(full.samples) == full.report["ticks"]
    with pytest.raises(ValueError, match="samples=False"):
        lean.samples


@pytest.mark.parametrize("key", ["usdm", "coinm", "spot"])
def test_a_tape_replays_like_its_lines(key):
    path = recording_path(key)
    rec = open_recording(path)
    spec = rec.detect_venue()
    by_lines = BookSync(spec.rule, spec.price_decimals, spec.size_decimals)
    n_lines = 0
    for raw in rec.messages():
        n_lines += 1
        if b'"e":"trade"' not in raw[:80]:
            route(by_lines, raw)
    tape = Tape.build(str(path), spec.rule, spec.price_decimals, spec.size_decimals)
    by_tape = BookSync(spec.rule, spec.price_decimals, spec.size_decimals)
    player = TapePlayer(tape, by_tape, keep_trades=False)
    assert player.next((1 << 63) - 1) == TapePlayer.END
    assert len(tape) == player.position == n_lines
    assert by_tape.stats.as_dict() == by_lines.stats.as_dict()
    assert by_tape.state == by_lines.state and by_tape.last_update_id == by_lines.last_update_id
    for a, b in zip(by_tape.book.top_raw(2000), by_lines.book.top_raw(2000)):
        assert a.tolist() == b.tolist()


def test_a_tape_file_round_trips_and_a_bad_one_is_refused(tmp_path):
    path = recording_path("spot")
    spec = open_recording(path).detect_venue()
    tape = Tape.build(str(path), spec.rule, spec.price_decimals, spec.size_decimals, keep_tickers=True)
    assert tape.tickers() and all(t[1] > 0 for t in tape.tickers())
    f = tmp_path / "spot.mmtape"
    tape.save(str(f), b"fingerprint")
    back, source = Tape.load(str(f))
    assert source == b"fingerprint" and Tape.read_source(str(f)) == b"fingerprint"
    assert (len(back), back.levels, back.trades, back.tickers()) == (len(tape), tape.levels, tape.trades, tape.tickers())
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ValueError) as e:
        Tape.load(str(f))
    assert e.value.kind == "bad_file"


def _small_recording(tmp_path: Path, lines: int = 12_000) -> Path:
    head = gzip.open(recording_path("usdm"), "rb").readlines()[:lines]
    out = tmp_path / "usdm_head.gz"
    out.write_bytes(gzip.compress(b"".join(head)))
    return out


def test_the_cache_is_used_while_fresh_and_rebuilt_when_the_recording_changes(tmp_path):
    rec = _small_recording(tmp_path)
    cfg = load_config(REPO / "examples" / "pmm.toml")
    first = open_feed(rec)
    r1 = run_backtest(cfg, first).report
    assert first.tape_source == "recording"
    beside = rec.with_name(rec.name + ".mmtape")
    assert beside.is_file()  # the folder is writable: beside the recording
    second = open_feed(rec)
    assert run_backtest(cfg, second).report == r1 and second.tape_source == "cache"
    # The recording changes (fewer lines): the tape no longer matches it and is rebuilt.
    rec.write_bytes(gzip.compress(b"".join(gzip.open(rec, "rb").readlines()[:8_000])))
    third = open_feed(rec)
    r3 = run_backtest(cfg, third).report
    assert third.tape_source == "recording" and r3["messages"] == 8_000
    # A damaged tape is read around, not trusted.
    beside.write_bytes(b"MMTAPE\x00\x01" + b"\xff" * 40)
    fourth = open_feed(rec)
    assert run_backtest(cfg, fourth).report == r3 and fourth.tape_source == "recording"
    # Without the cache nothing is read or written.
    beside.unlink()
    off = open_feed(rec, cache=False)
    assert run_backtest(cfg, off).report == r3 and not beside.exists()


def test_a_process_reads_a_tape_file_once_while_it_is_unchanged(tmp_path):
    rec = _small_recording(tmp_path)
    spec = open_feed(rec).recording.detect_venue()
    built = open_feed(rec).tape(spec)  # read from the recording, written beside it, kept
    again = open_feed(rec)
    assert again.tape(spec) is built and again.tape_source == "cache"
    # The tape file is rewritten (same content, new file): it is read again, not trusted from memory.
    beside = rec.with_name(rec.name + ".mmtape")
    data = beside.read_bytes()
    beside.unlink()
    beside.write_bytes(data)
    reread = open_feed(rec)
    fresh = reread.tape(spec)
    assert fresh is not built and reread.tape_source == "cache" and len(fresh) == len(built)
    assert open_feed(rec).tape(spec) is fresh
    # Without the cache nothing kept is used either.
    assert open_feed(rec, cache=False).tape(spec) is not fresh


def test_no_tape_is_written_into_a_read_only_folder(tmp_path, monkeypatch):
    ro = tmp_path / "shared"
    ro.mkdir()
    rec = _small_recording(ro)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MIXMAKER_CACHE", str(cache))
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        assert cache_paths(rec) == [cache / f"{rec.name}-{cache_paths(rec)[0].name.split('-')[-1]}"]
        feed = open_feed(rec)
        run_backtest(load_config(REPO / "examples" / "pmm.toml"), feed)
        assert sorted(p.name for p in ro.iterdir()) == [rec.name]
        assert len(list(cache.glob("*.mmtape"))) == 1
    finally:
        ro.chmod(stat.S_IRWXU)


def test_prepare_writes_the_tape_and_says_where(tmp_path, capsys):
    rec = _small_recording(tmp_path)
    assert main(["backtest", "--feed", str(rec), "--prepare"]) == 0
    out = capsys.readouterr().out
    assert "Tape(" in out and str(rec) + ".mmtape" in out
    assert os.path.getsize(str(rec) + ".mmtape") > 0
    feed = open_feed(rec)
    run_backtest(load_config(REPO / "examples" / "pmm.toml"), feed)
    assert feed.tape_source == "cache"


def test_a_bad_trade_line_is_a_clear_error(tmp_path):
    from mixmaker.replay.errors import UnreadableRecordingError

    bad = tmp_path / "bad.gz"
    lines = gzip.open(recording_path("usdm"), "rb").readlines()[:100]
    lines.append(b'1723161255999999999 {"stream":"btcusdt@trade","data":{"e":"trade","p":"oops","q":"1","m":true}}\n')
    bad.write_bytes(gzip.compress(b"".join(lines)))
    with pytest.raises(UnreadableRecordingError, match="line 101: unreadable trade"):
        run_backtest(load_config(REPO / "examples" / "pmm.toml"), open_feed(bad))


def test_cli_no_cache_reads_the_recording_and_writes_nothing(tmp_path, capsys):
    rec = _small_recording(tmp_path)
    assert main(["backtest", "--feed", str(rec), "--config", str(REPO / "examples" / "pmm.toml"), "--no-cache",
                 "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["messages"] == 12_000
    assert not Path(str(rec) + ".mmtape").exists()


def test_a_run_leaves_the_callers_frozen_objects_frozen(tmp_path):
    """A run hands its own leftovers to the oldest generation on the way out (freeze, unfreeze):
    never when the caller froze objects itself, whose freeze that would undo."""
    import gc

    rec = _small_recording(tmp_path, 3_000)
    cfg = load_config(REPO / "examples" / "pmm.toml")
    kept = [[i] for i in range(1000)]  # the caller's long-lived data
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        run_backtest(cfg, open_feed(rec))
        # (a frozen object freed meanwhile leaves the count: it may fall a little, never to 0)
        assert gc.get_freeze_count() > frozen // 2 and gc.isenabled()
    finally:
        gc.unfreeze()
    run_backtest(cfg, open_feed(rec))  # nothing frozen: the run's own leftovers are not left frozen
    assert gc.get_freeze_count() == 0 and gc.isenabled() and len(kept) == 1000


@pytest.mark.parametrize("config,feed,passes", [
    ("benches/maker_20hz.toml", "usdm", True), ("tests/data/backtest_variants/pmm_noopt_wait.toml", "usdm", True),
    # order optimization reads depth, not only the best prices: every tick runs
    ("examples/pmm.toml", "usdm", False), ("tests/data/backtest_variants/pmm_hanging.toml", "usdm", False),
    ("tests/data/backtest_variants/spot_pmm.toml", "spot", False),
    ("examples/avellaneda.toml", "usdm", False)])  # Avellaneda-Stoikov does not say when it holds
def test_ticks_that_pass_held_in_rust_are_the_ticks_python_would_have_run(config, feed, passes):
    """Ticks at which the last decision stands are let pass by the player and counted as ticked:
    the report, every sample row, the loop's and the executor's counters are those of the run
    that calls the strategy on every tick."""
    from mixmaker.backtest.report import build_report
    from mixmaker.backtest.runner import Backtest

    cfg, path = load_config(REPO / config), recording_path(feed)
    runs = {}
    for pass_held in (False, True):
        bt = Backtest(cfg, open_feed(path), samples=True, pass_held=pass_held)
        report = build_report(bt.run())
        runs[pass_held] = (bt, report)
    (slow, r_slow), (fast, r_fast) = runs[False], runs[True]
    assert slow.ticks_passed == 0
    assert r_fast == r_slow
    assert fast.rows.rows == slow.rows.rows
    assert (fast.clock.ticks, fast.loop.decisions, fast.loop.idle_ticks) == (
        slow.clock.ticks, slow.loop.decisions, slow.loop.idle_ticks)
    assert fast.executor.stats == slow.executor.stats and fast.not_quoting == slow.not_quoting
    if passes:
        assert fast.ticks_passed > fast.clock.ticks // 4, (fast.ticks_passed, fast.clock.ticks)
    else:
        assert fast.ticks_passed == 0
