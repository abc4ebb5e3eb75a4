#!/usr/bin/env bash
# The Python gates: `ruff check python/mixmaker` and `mypy` (both configured in pyproject.toml:
# [tool.ruff], [tool.mypy] strict, the whole package). Run from anywhere; PYTHON picks the
# interpreter that has ruff and mypy (tests/run.sh passes its test venv's).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"

echo "==> ruff check python/mixmaker"
"$python" -m ruff check python/mixmaker
echo "==> mypy (strict, python/mixmaker)"
"$python" -m mypy
