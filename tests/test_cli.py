"""`mixmaker replay`: the synthetic default, JSON output, exit codes and error messages."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import recording_path

from mixmaker.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_without_a_file_runs_the_synthetic_feed(capsys, synthetic):
    code, out, err = run(capsys, "replay")
    assert code == 0, err
    assert "synthetic feed (seed 7" in out
    assert "SYNCED" in out and "result" in out and "OK" in out
    assert f"{synthetic.checked_tickers:,} match the book" in out and ", 0 mismatch" in out
    assert err == ""  # no progress line: stderr is not a terminal here


def test_json_output_is_one_valid_object(capsys, synthetic):
    code, out, _ = run(capsys, "replay", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["state"] == "SYNCED" and doc["ok"] is True and doc["problems"] == []
    assert doc["diffs_applied"] == synthetic.applied_diffs
    assert doc["ticker_matches"] == synthetic.checked_tickers and doc["ticker_mismatches"] == 0
    best_bid = max(synthetic.final_bids)
    assert doc["best_bid"] == f"{best_bid // 100}.{best_bid % 100:02d}"
    assert doc["bid_levels"] == len(synthetic.final_bids)


def test_a_missing_file_is_a_clear_error(capsys, tmp_path: Path):
    missing = tmp_path / "nope.gz"
    code, out, err = run(capsys, "replay", str(missing))
    assert code == 2
    assert out == ""
    assert "no such recording" in err and str(missing) in err
    assert "Traceback" not in err


def test_an_undetectable_file_asks_for_flags(capsys, tmp_path: Path):
    p = tmp_path / "notes.txt"
    p.write_text("hello\n")
    code, _, err = run(capsys, "replay", str(p))
    assert code == 2 and "--rule" in err


def test_a_replay_that_ends_desynced_exits_non_zero(capsys, tmp_path: Path, synthetic):
    # Drop a diff from the middle of the synthetic feed: the book ends DESYNCED (no snapshot).
    lines = synthetic.lines()
    diffs = [i for i, ln in enumerate(lines) if b"depthUpdate" in ln[:80]]
    del lines[diffs[len(diffs) // 2]]
    p = tmp_path / "gap.txt"
    p.write_bytes(b"\n".join(lines))
    code, out, err = run(capsys, "replay", str(p), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["state"] == "DESYNCED" and doc["gaps"] == 1
    assert doc["best_bid"] is None and doc["bid_levels"] == 0  # nothing stale is reported
    assert "DESYNCED" in err and "gap" in err


def test_progress_is_shown_when_asked(synthetic):
    from mixmaker.replay import replay

    buf = io.StringIO()
    messages = list(synthetic.messages) * 2  # long enough for one progress report
    r = replay(iter(messages), synthetic.spec, progress=True, progress_to=buf)
    assert "messages" in buf.getvalue() and "msg/s" in buf.getvalue()
    assert r.messages == len(messages)
    quiet = io.StringIO()
    replay(iter(messages), synthetic.spec, progress=False, progress_to=quiet)
    assert quiet.getvalue() == ""


def test_bad_flag_values_are_usage_errors(capsys):
    for argv in (["replay", "--price-decimals", "-1"], ["replay", "--max-buffer", "0"], ["replay", "--rule", "nyse"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert "error" in capsys.readouterr().err


def test_the_installed_entry_point(synthetic):
    exe = Path(sys.executable).with_name("mixmaker")
    if not exe.exists():
        pytest.skip(f"no `mixmaker` script next to {sys.executable} (package not pip-installed)")
    done = subprocess.run([str(exe), "replay", "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ticker_matches"] == synthetic.checked_tickers
    bad = subprocess.run([str(exe), "replay", "/nonexistent/feed.gz"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no such recording" in bad.stderr and "Traceback" not in bad.stderr


def test_replay_of_the_usdm_recording(capsys):
    code, out, err = run(capsys, "replay", str(recording_path("usdm")))
    assert code == 0, err
    assert "61659.70 x 1.486" in out and "61659.80 x 0.981" in out
    assert "629 match the book (126 arrived after their diff), 0 mismatch" in out
