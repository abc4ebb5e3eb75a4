#!/usr/bin/env bash
# The test command: builds the wheel into a fresh virtualenv (exactly as a user's
# `pip install .` does), then runs the Rust core's tests, the Rust gates (clippy, rustfmt), the
# stub check of the extension (mypy.stubtest), the Python gates (tests/lint.sh: ruff, mypy) and the
# Python suite.
# Recording-based tests read ../shared/data/market (or $MIXMAKER_DATA) and skip if absent.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${MIXMAKER_TEST_VENV:-.venv-test}"
for tool in cargo rustfmt cargo-clippy python3 cc; do
    command -v "$tool" >/dev/null || { echo "tests/run.sh: '$tool' not found: install it first (see README)" >&2; exit 2; }
done

echo "==> building the wheel into $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet ".[test]"

echo "==> Rust core tests"
cargo test --release -p mixmaker-core

echo "==> Rust gates: clippy (workspace lints, all targets) and rustfmt (rustfmt.toml)"
# build.rs runs Cython through the test venv's interpreter.
"$venv/bin/python" -m pip install --quiet cython==3.3.1 mypy==2.4.1 ruff==0.17.6
PYO3_PYTHON="$(cd "$venv" && pwd)/bin/python" cargo clippy --all-targets -- -D warnings
cargo fmt --check

echo "==> the extension's stubs match it (mypy.stubtest)"
MYPYPATH=python "$venv/bin/python" -m mypy.stubtest mixmaker._core --allowlist tests/stubtest_allowlist.txt

echo "==> Python gates: ruff and mypy (tests/lint.sh)"
PYTHON="$venv/bin/python" tests/lint.sh

# The dashboard's test runs the demo in a real terminal (tmux); install it where we can, else
# that one test skips and says why.
if ! command -v tmux >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && apt-get install -y -qq tmux >/dev/null) || echo "tests/run.sh: could not install tmux" >&2
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then
        (sudo -n apt-get update -qq && sudo -n apt-get install -y -qq tmux >/dev/null) || echo "tests/run.sh: could not install tmux" >&2
    fi
fi

echo "==> Python tests"
# Two workers (pytest-xdist): most slow tests wait on simulators and child processes, so the
# suite takes about half the wall time on a 2-core machine. MIXMAKER_TEST_WORKERS=0 runs it serially.
"$venv/bin/python" -m pytest -q -p no:cacheprovider -n "${MIXMAKER_TEST_WORKERS:-2}" "$@"
