"""Memo protocol v1: every valid memo round-trips; random and mutated bytes give only a typed
MemoError with its reason, never another exception and never a guess."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mixmaker.errors import MixmakerError
from mixmaker.users import memo as m
from mixmaker.users.memo import AddMemo, CreateMemo, MemoError, MemoFault, StopMemo

OID = "5b0e3a52-8f8e-4c53-9a53-2a4bd1a2f0c1"

order_ids = st.uuids(allow_nil=False).map(str)
names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}\Z")
symbols = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,20}\Z")
markets = st.builds(lambda v, b, q: f"{v}:{b}/{q}", names, symbols, symbols).filter(lambda s: len(s.encode()) <= 64)
units = st.integers(0, 2**64 - 1)
creates = st.builds(CreateMemo, order_ids, markets, names, units, units).filter(lambda c: c.base_units or c.quote_units)
memos = st.one_of(creates, st.builds(AddMemo, order_ids), st.builds(StopMemo, order_ids))


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@given(memos)
def test_every_valid_memo_round_trips(memo):
    extra = m.to_extra(memo)
    assert len(extra) <= m.EXTRA_LIMIT
    assert m.decode_extra(extra) == memo
    assert m.decode(m.encode(memo)) == memo
    got, lines = m.explain(extra.hex())
    assert got == memo and "valid" in lines[0]


def test_a_create_memo_is_compact_and_readable():
    c = CreateMemo(OID, "binance:BTC/USDT", "tight", 50_000_000, 3_000_000_000_000)
    text = m.to_text(c)
    assert len(text) < 110 and text.isascii()
    assert m.describe(c) == (f"CREATE order {OID} in pool binance:BTC/USDT with preset tight, funded when "
                             "0.5 BTC and 30000 USDT have arrived")
    assert m.explain(text)[0] == c


def _fault(extra: bytes) -> MemoFault:
    with pytest.raises(MemoError) as e:
        m.decode_extra(extra)
    assert isinstance(e.value, MixmakerError)
    return e.value.fault


def _sealed(body: bytes) -> bytes:
    return b64(body + m._checksum(body))


def test_each_fault_has_its_reason():
    good = m.encode(CreateMemo(OID, "binance:BTC/USDT", "tight", 1, 0))
    body = good[:-4]
    oid = uuid.UUID(OID).bytes
    assert _fault(b"") is MemoFault.EMPTY
    assert _fault(b"A" * 257) is MemoFault.TOO_LONG
    assert _fault(b"hello world") is MemoFault.NOT_BASE64URL
    assert _fault(b64(good) + b"==") is MemoFault.NOT_BASE64URL  # padding
    assert _fault(b64(b"MM\x01\x02")) is MemoFault.TOO_SHORT
    assert _fault(b64(b"XX" + good[2:])) is MemoFault.BAD_MAGIC
    assert _fault(b64(b"MM\x02" + good[3:])) is MemoFault.UNSUPPORTED_VERSION
    assert _fault(b64(good[:-1] + bytes([good[-1] ^ 1]))) is MemoFault.BAD_CHECKSUM
    assert _fault(_sealed(b"MM\x01\x09" + oid)) is MemoFault.UNKNOWN_ACTION
    assert _fault(_sealed(b"MM\x01\x02" + bytes(16))) is MemoFault.BAD_FIELD  # nil order id
    assert _fault(_sealed(b"MM\x01\x02" + oid + b"\x00")) is MemoFault.TRAILING_BYTES
    assert _fault(_sealed(body + b"\x00")) is MemoFault.TRAILING_BYTES
    assert _fault(_sealed(body[:-3])) is MemoFault.BAD_FIELD  # amount cut short
    assert _fault(_sealed(b"MM\x01\x01" + oid + b"\x03bin\x01t" + bytes(16))) is MemoFault.BAD_FIELD  # market
    assert _fault(_sealed(b"MM\x01\x01" + oid + b"\x03a:b\x01t" + bytes(16))) is MemoFault.BAD_FIELD
    bad_utf8 = b"MM\x01\x01" + oid + b"\x05a:b/\xff\x01t" + bytes(8) + (1).to_bytes(8, "big")
    assert _fault(_sealed(bad_utf8)) is MemoFault.BAD_FIELD
    no_funding = m.encode(CreateMemo(OID, "binance:BTC/USDT", "tight", 1, 0))[:-20] + bytes(16)
    assert _fault(_sealed(no_funding)) is MemoFault.BAD_FIELD
    # the non-canonical spelling of valid bytes (unused low bits set) is refused
    text = b64(good)
    if len(good) % 3:
        alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(text[-1:])
        assert _fault(text[:-1] + alphabet[last + 1:last + 2]) is MemoFault.NOT_BASE64URL


def test_encoding_refuses_what_decoding_would_refuse():
    with pytest.raises(MemoError):
        m.encode(CreateMemo(OID, "binance:BTC/USDT", "tight", 0, 0))
    with pytest.raises(MemoError):
        m.encode(CreateMemo(OID, "BTC/USDT", "tight", 1, 0))
    with pytest.raises(MemoError):
        m.encode(StopMemo("not-a-uuid"))
    with pytest.raises(MemoError):
        m.encode(CreateMemo(OID, "binance:BTC/USDT", "tight", 2**64, 0))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
@example(b"MM")
@example(b"\xff\xfe")
def test_random_bytes_give_only_typed_errors(data):
    for extra in (data, b64(data)):
        try:
            memo = m.decode_extra(extra)
        except MemoError as e:
            assert isinstance(e.fault, MemoFault)
        else:  # only an exactly valid memo decodes, and it has exactly one spelling
            assert m.to_extra(memo) == extra
    try:
        m.decode(data)
    except MemoError:
        pass


@settings(max_examples=400)
@given(memos, st.data())
def test_mutated_memos_give_only_typed_errors(memo, data):
    raw = bytearray(m.encode(memo))
    kind = data.draw(st.sampled_from(["flip", "cut", "insert", "append", "text"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
        extra = b64(bytes(raw))
    elif kind == "cut":
        extra = b64(bytes(raw[: data.draw(st.integers(0, len(raw) - 1))]))
    elif kind == "insert":
        i = data.draw(st.integers(0, len(raw)))
        extra = b64(bytes(raw[:i] + data.draw(st.binary(min_size=1, max_size=8)) + raw[i:]))
    elif kind == "append":
        extra = b64(bytes(raw)) + data.draw(st.binary(min_size=1, max_size=4))
    else:
        text = bytearray(m.to_extra(memo))
        i = data.draw(st.integers(0, len(text) - 1))
        text[i] = data.draw(st.integers(0, 255).filter(lambda c: c != text[i]))
        extra = bytes(text)
    try:
        got = m.decode_extra(extra)
    except MemoError as e:
        assert isinstance(e.fault, MemoFault)
    else:
        assert m.to_extra(got) == extra  # a mutation that still checks out is some other exact memo
