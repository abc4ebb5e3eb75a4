"""The engine's config: every problem listed at once, each naming its key; secrets never echoed;
the examples parse; the demo runs on exactly examples/paper.toml."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from mixmaker.engine import config as c
from mixmaker.engine.errors import ConfigInvalidError
from mixmaker.engine.paper_config import PAPER_TOML

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "examples" / "paper.toml"
LIVE = ROOT / "examples" / "live.toml"


def problems(text: str, mode: c.Mode = c.Mode.PAPER) -> list[str]:
    with pytest.raises(ConfigInvalidError) as e:
        c.parse_text(text, "test.toml", mode=mode)
    return e.value.problems


def test_the_paper_example_is_valid_and_is_what_the_demo_runs():
    cfg = c.load(PAPER)
    assert [p.pool_id for p in cfg.catalog.pools] == ["binance:BTC/USDT:tight", "binance:BTC/USDT:wide"]
    assert cfg.catalog.limits.bot_share == Fraction(1, 10)
    assert cfg.catalog.limits.of("BTC").min_units == 10_000  # 0.0001 BTC, exactly
    assert cfg.catalog.preset("tight").config.bid_spread == Decimal("0.0001")  # read as written, not via a float
    assert PAPER.read_text() == PAPER_TOML


def test_the_live_template_parses_and_a_live_run_asks_for_its_secrets(monkeypatch):
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    c.load(LIVE, mode=c.Mode.PAPER)  # the file itself is valid
    ps = problems(LIVE.read_text(), c.Mode.LIVE)
    assert len(ps) == 2
    assert ps[0].startswith("mixin.keystore: ")
    assert ps[1].startswith("exchanges.binance.api_secret_env: ") and "BINANCE_API_KEY" in ps[1]


def test_five_mistakes_give_five_messages_each_naming_its_key():
    text = (PAPER.read_text()
            .replace("metrics_port = 9108", "metrics_port = 70000")
            .replace('mixin_asset_id = "4d8c508b-91c5-375b-92b0-ee702ed2dac5"', 'mixin_asset_id = "not-a-uuid"')
            .replace("bid_spread = 0.0003", "bid_spread = -1")
            .replace('bot_share = "0.10"', 'bot_share = "1.5"')
            .replace('[markets."binance:BTC/USDT"]', '[markets."binance:DOGE/BTC"]\nprice_decimals = 8\n'
                     'size_decimals = 0\n\n[markets."binance:BTC/USDT"]'))
    ps = problems(text)
    assert len(ps) == 5, ps
    keys = ["engine.metrics_port", "assets.USDT.mixin_asset_id", "presets.wide.bid_spread", "limits.bot_share",
            'markets."binance:DOGE/BTC"']
    for key in keys:
        assert sum(p.startswith(key + ":") for p in ps) == 1, (key, ps)
    # The message says what is wrong, not only where.
    assert any("DOGE" in p and "[assets]" in p for p in ps)


def test_one_bad_entry_does_not_hide_another_and_cascades_are_not_reported():
    text = (PAPER.read_text()
            .replace('mixin_asset_id = "c6d0c728-2624-429b-8e0d-d9d19b6592fa"', 'mixin_asset_id = 7')
            .replace('size_decimals = 5', 'size_decimals = 5\ntick = "0.01"')
            .replace('offer = ["binance:BTC/USDT:tight", "binance:BTC/USDT:wide"]',
                     'offer = ["binance:BTC/USDT:tight", "binance:ETH/USDT:wide", "nonsense"]')
            .replace("log_format = \"human\"", "log_fromat = \"human\""))
    ps = problems(text)
    assert [p.split(":")[0] for p in ps] == [
        "engine.log_fromat", "assets.BTC.mixin_asset_id", 'markets."binance', "pools.offer[1]", "pools.offer[2]"], ps
    # the market that uses the bad asset BTC is not blamed for BTC (its own extra key is)
    assert not any("BTC not configured" in p for p in ps)


def test_a_misspelt_key_and_an_unknown_account_are_each_one_mistake():
    text = (PAPER.read_text()
            .replace("bid_spread = 0.0003", "bid_spred = 0.0003")  # a required key, misspelt
            .replace('venues.binance = { currency = "USDT", network = "ETH" }',
                     'venues.bybit = { currency = "USDT", network = "ETH" }'))
    ps = problems(text)
    assert ps == ["presets.wide.bid_spred: unknown key; did you mean 'bid_spread'? (it is required)",
                  "assets.USDT.venues.bybit: no exchange account 'bybit' (configured: binance)"], ps


def test_sections_and_exactness():
    ps = problems("[engine]\ntick_s = 0\n[surprise]\nx = 1\n")
    assert "surprise: unknown section" in ps[0]
    assert any(p.startswith("exchanges: missing section") for p in ps)
    assert any(p.startswith("engine.tick_s:") for p in ps)
    text = PAPER.read_text().replace('min = "0.0001"', 'min = "0.000000001"')
    assert problems(text) == ["limits.assets.BTC.min: 0.000000001 is finer than BTC's 8 decimals"]
    assert problems("not toml [")[0].startswith("not valid TOML")


def test_secrets_are_never_echoed(tmp_path, monkeypatch):
    secret = "s3cr3t-VALUE-never-printed-0123456789"
    keys = tmp_path / "keys.toml"
    keys.write_text(f'api_secret = "{secret}"\n')  # no api_key: a mistake
    keys.chmod(0o600)
    text = PAPER.read_text().replace('kind = "binance"               # paper',
                                     f'keys_file = "{keys}"\nkind = "binance"  # paper')
    ps = problems(text, c.Mode.LIVE)
    assert any(p.startswith("exchanges.binance.keys_file:") and "api_key" in p for p in ps), ps
    assert secret not in "\n".join(ps)
    # a secret put where a number goes is not echoed either
    ps = problems(PAPER.read_text().replace("metrics_port = 9108", f'metrics_port = "{secret}"'))
    assert ps[0].startswith("engine.metrics_port:") and secret not in ps[0]
    # from the environment: found, and held as a SecretStr
    monkeypatch.setenv("MM_TEST_KEY", "key-1")
    monkeypatch.setenv("MM_TEST_SECRET", secret)
    from mixmaker.engine.secrets import exchange_keys

    creds = exchange_keys(c.ExchangeSection(api_key_env="MM_TEST_KEY", api_secret_env="MM_TEST_SECRET"))
    assert secret not in repr(creds)
    assert creds.sign("x") == hmac.new(secret.encode(), b"x", hashlib.sha256).hexdigest()  # it holds that secret


def test_mixmaker_run_refuses_an_invalid_file_listing_every_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(PAPER.read_text().replace("metrics_port = 9108", "metrics_port = -1")
                   .replace("tick_s = 0.5", "tick_s = 0"))
    from engine_helpers import env

    r = subprocess.run([sys.executable, "-m", "mixmaker.cli", "run", "--paper", str(bad)], capture_output=True,
                       text=True, env=env(), timeout=60)
    assert r.returncode == 2, r.stderr
    assert "2 problems" in r.stderr and "engine.metrics_port" in r.stderr and "engine.tick_s" in r.stderr
    json.dumps(r.stderr)  # one plain text message


def test_funds_settings_are_checked_each_problem_naming_its_key():
    cfg = c.load(PAPER)
    fc = cfg.funds_config()
    assert fc.mover.min_units == {"BTC": 20_000, "USDT": 500_000_000}  # exact ledger units
    assert fc.mover.max_fee_fraction == Fraction(1, 10) and fc.reconcile_every_s == 5.0
    assert fc.fee_payers == frozenset({str(cfg.funds.fee_payers[0])})
    assert cfg.catalog.assets.symbol("USDT").venues["binance"].network == "ETH"
    text = (PAPER.read_text()
            .replace('max_fee_fraction = "0.10"', 'max_fee_fraction = "1.5"')
            .replace("to_send_s = 120", "to_send_s = 0")
            .replace('fee_payers = ["5e7d0c1a-9b2f-4a63-8c4e-1f0a2b3c4d5e"]', 'fee_payers = ["the operator"]')
            .replace('BTC = "0.0002"', 'BTC = "0.000000001"\nDOGE = "5"')
            .replace('venues.binance = { currency = "USDT", network = "ETH" }',
                     'venues.binance = { currency = "USDT", network = "ETH", tag_rule = "sometimes" }'))
    ps = problems(text)
    keys = ["funds.max_fee_fraction", "funds.to_send_s", "funds.fee_payers[0]", "funds.min.BTC", "funds.min.DOGE",
            "assets.USDT.venues.binance.tag_rule"]
    assert len(ps) == len(keys), ps
    for key in keys:
        assert sum(p.startswith(key + ":") for p in ps) == 1, (key, ps)
    assert any("finer than BTC's 8 decimals" in p for p in ps) and any("DOGE is not configured" in p for p in ps)


def test_a_live_run_validates_then_connects_and_says_clearly_that_the_venues_do_not_answer(tmp_path):
    """A live run builds the same engine (the funds layer on the real venues): its config and
    secrets are checked first, then it connects; venues that do not answer (here: a closed port
    on 127.0.0.1, never the internet) end it with a clear error, and no secret is printed."""
    from engine_helpers import env, free_port

    from mixmaker.sim.mixin.setup import new_bot, seeded_world

    ks = tmp_path / "keystore.json"
    ks.write_text(json.dumps(new_bot(seeded_world(3))))
    ks.chmod(0o600)
    closed = f"http://127.0.0.1:{free_port()}"
    cfg = tmp_path / "live.toml"
    cfg.write_text(LIVE.read_text().replace('keystore = "keystore.json"', f'keystore = "{ks}"')
                   .replace('url = "https://api.mixin.one"', f'url = "{closed}"')
                   .replace("connect_timeout_s = 60", "connect_timeout_s = 2")
                   .replace("metrics_port = 9108", "metrics_port = 0")
                   .replace('database = "mixmaker-state/mixmaker.db"', f'database = "{tmp_path / "live.db"}"'))
    secret = "live-secret-never-printed-42"
    r = subprocess.run([sys.executable, "-m", "mixmaker.cli", "run", str(cfg)], capture_output=True, text=True,
                       env={**env(), "BINANCE_API_KEY": "k", "BINANCE_API_SECRET": secret}, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "mixin did not start after 2 s" in out and "127.0.0.1" in out, out
    assert "issue 16" not in out and secret not in out
