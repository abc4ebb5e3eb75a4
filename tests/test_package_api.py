"""The package's API is plain imports that type checkers see: no module-level `__getattr__`
facades, and `mixmaker --help` still does not import the strategy stack."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import mixmaker

ROOT = pathlib.Path(mixmaker.__file__).parent


def test_no_module_hides_its_names_behind_getattr():
    lazy = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
            if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in ast.parse(p.read_text()).body)]
    assert lazy == []


def test_the_cli_parser_does_not_import_the_backtest_runner():
    code = ("import sys, mixmaker.cli; mixmaker.cli._parser(); "
            "print(sorted(m for m in ('mixmaker.backtest.runner', 'mixmaker.strategy.pmm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT.parent)})
    assert out.stdout.strip() == "[]"


def test_the_mixin_client_is_a_plain_name_of_the_package():
    from mixmaker.mixin import MixinClient
    from mixmaker.mixin.client import MixinClient as direct

    assert MixinClient is direct
