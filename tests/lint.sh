#!/usr/bin/env bash
# The Python gates: `ruff check python/mixmaker` and `mypy` (both configured in pyproject.toml:
# [tool.ruff], [tool.mypy] strict). Run from anywhere; PYTHON picks the interpreter that has
# ruff and mypy (tests/run.sh passes its test venv's).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"

# --- TEMPORARY (issue 14) -------------------------------------------------------------------
# Packages being rewritten on other branches; they are checked once those merge. The lead
# empties this list (and then this whole block can go). Excluded packages are still read by
# mypy where the rest imports them (follow_imports=silent): their types count, their errors
# are not reported.
LINT_EXCLUDE=()
# ---------------------------------------------------------------------------------------------

ruff_args=()
mypy_args=()
if ((${#LINT_EXCLUDE[@]})); then
    excluded=$(IFS=,; printf '%s' "${LINT_EXCLUDE[*]/#/python/mixmaker/}")
    ruff_args+=(--exclude "$excluded")
    mypy_args+=(--exclude "^python/mixmaker/($(IFS='|'; printf '%s' "${LINT_EXCLUDE[*]}"))/" --follow-imports=silent)
    echo "tests/lint.sh: not yet checked (temporary): ${LINT_EXCLUDE[*]}" >&2
fi

echo "==> ruff check python/mixmaker"
"$python" -m ruff check python/mixmaker "${ruff_args[@]}"
echo "==> mypy (strict, python/mixmaker)"
"$python" -m mypy "${mypy_args[@]}"
