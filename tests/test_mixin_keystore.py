"""Keystore loading, secrets that never print, and exact amounts."""

from __future__ import annotations

import json
import os
import pickle
from decimal import Decimal

import pytest

from mixmaker.mixin import Keystore, KeystoreError
from mixmaker.mixin.amounts import AmountError, format_units, from_units, to_units

KS = {
    "app_id": "13c79909-fd32-401b-bfe5-ecf53816ddbf",
    "session_id": "26f481d3-9fd5-47ae-acf3-dff8c94f9e87",
    "server_public_key": "63e2f06c98ca6b74fe369df18fb673c19d95821e080891666c7f46266a06e2eb",
    "session_private_key": "8608c3972c7b61a0e9edb1c8bc051bd5d2c62818c9e338bceb7413306611c722",
    "spend_private_key": "7fb3893475a82c85e2b3c8a9a9232eddb36651ac32fa98ae83e6c2f33fb1be84",
}


def _write(tmp_path, mode: int, content: str | None = None):
    p = tmp_path / "keystore.json"
    p.write_text(content if content is not None else json.dumps(KS))
    os.chmod(p, mode)
    return p


def test_from_file_loads_a_private_file(tmp_path):
    ks = Keystore.from_file(_write(tmp_path, 0o600))
    assert ks.app_id == KS["app_id"] and ks.session_id == KS["session_id"]
    assert ks.session_private_key.reveal().hex() == KS["session_private_key"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_from_file_refuses_a_file_others_can_read(tmp_path, mode):
    with pytest.raises(KeystoreError, match="chmod 600"):
        Keystore.from_file(_write(tmp_path, mode))


def test_bad_json_error_does_not_echo_the_content(tmp_path):
    with pytest.raises(KeystoreError) as e:
        Keystore.from_file(_write(tmp_path, 0o600, '{"session_private_key": "' + KS["session_private_key"]))
    assert KS["session_private_key"] not in str(e.value)
    with pytest.raises(KeystoreError, match="cannot read"):
        Keystore.from_file(tmp_path / "missing.json")


def test_secrets_never_print():
    ks = Keystore.from_dict(KS)
    for key in ("session_private_key", "spend_private_key"):
        hexkey = KS[key]
        for text in (repr(ks), str(ks), f"{ks}", repr(ks.session_private_key), str(ks.spend_private_key),
                     f"{ks.spend_private_key:>80}", repr(vars(ks) if hasattr(ks, "__dict__") else ks)):
            assert hexkey not in text and bytes.fromhex(hexkey).hex() not in text
    with pytest.raises(TypeError):
        pickle.dumps(ks.spend_private_key)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"app_id": "not-a-uuid"}, "app_id must be a UUID"),
        ({"session_id": None}, "session_id must be a UUID"),
        ({"session_private_key": "zz"}, "not hex"),
        ({"server_public_key": "00" * 31}, "32 bytes"),
        ({"session_private_key": None}, "missing"),
    ],
)
def test_malformed_fields_are_named(change, message):
    with pytest.raises(KeystoreError, match=message):
        Keystore.from_dict({**KS, **change})


def test_legacy_names_and_64_byte_keys():
    d = {**KS, "client_id": KS["app_id"], "session_private_key": KS["session_private_key"] + "00" * 32}
    del d["app_id"]
    ks = Keystore.from_dict(d)
    assert ks.app_id == KS["app_id"] and ks.session_private_key.reveal().hex() == KS["session_private_key"]
    with pytest.raises(KeystoreError, match="legacy"):
        Keystore.from_dict({"client_id": KS["app_id"], "session_id": KS["session_id"], "private_key": "x"})
    no_spend = Keystore.from_dict({k: v for k, v in KS.items() if k != "spend_private_key"})
    with pytest.raises(KeystoreError, match="cannot sign"):
        no_spend.spend_public_key


def test_amounts_are_exact():
    assert to_units("1") == 100_000_000 and to_units(Decimal("0.00000001")) == 1 and to_units(3) == 300_000_000
    assert from_units(123) == Decimal("0.00000123") and format_units(100_000_000) == "1"
    assert format_units(-250_000_000) == "-2.5" and format_units(0) == "0"
    for bad in (0.1, "0.000000001", "abc", "NaN", "Infinity"):
        with pytest.raises(AmountError):
            to_units(bad)
