#!/usr/bin/env bash
# The test command: builds the wheel into a fresh virtualenv (exactly as a user's
# `pip install .` does), then runs the Rust core's tests and the Python suite.
# Recording-based tests read ../shared/data/market (or $MIXMAKER_DATA) and skip if absent.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${MIXMAKER_TEST_VENV:-.venv-test}"
for tool in cargo python3 cc; do
    command -v "$tool" >/dev/null || { echo "tests/run.sh: '$tool' not found: install it first (see README)" >&2; exit 2; }
done

echo "==> building the wheel into $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet ".[test]"

echo "==> Rust core tests"
cargo test --release -p mixmaker-core

echo "==> Python tests"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
