"""The memo protocol, version 1: what a user's payment asks the bot to do.

Users paste memos into wallets as text, so the transaction `extra` is ASCII: base64url without
padding of a small binary record (the snapshot's `memo` field is the hex of that extra):

    "MM"  version=1  action  order id (16 bytes)  fields...  checksum (4 bytes)

- action 1 CREATE: market (u8 length + UTF-8, "binance:BTC/USDT"), preset (u8 length + UTF-8),
  expected funding in Mixin units (1e-8): base (u64 big-endian), quote (u64); at least one > 0.
  Every payment of the order carries the same CREATE memo; the order is funded when what arrived
  reaches both amounts.
- action 2 ADD: more funds for an order of the same payer (funding or active).
- action 3 STOP: stop an order of the same payer; its own small payment comes back with the payout.
- checksum: the first 4 bytes of SHA-256 over everything before it.

A CREATE memo is about 75 bytes (100 characters), well inside Mixin's 256-byte extra.

Decoding is strict: anything that is not exactly a valid memo raises `MemoError` with a `MemoFault`
reason (the payment is then refunded with it), never a guess. Unknown action values are their own
fault ("unknown action"), so later actions fit in version 1.

A memo pasted with whitespace around it (a trailing newline copied from a terminal or a chat; a
wallet's memo field keeps what was pasted) is refused too, with a detail that says so, not
trimmed: one memo has exactly one spelling, and the refund costs the user only a retry.
`mixmaker memo decode` trims its command-line argument, but not the bytes of a snapshot's hex.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
import struct
import uuid
from dataclasses import dataclass

from mixmaker.users.catalog import MAX_MARKET_NAME, _check_name, parse_market_name
from mixmaker.users.errors import CatalogError, UserError

MAGIC = b"MM"
VERSION = 1
CHECKSUM_BYTES = 4
EXTRA_LIMIT = 256  # Mixin's general extra size limit
MAX_MARKET = MAX_MARKET_NAME
MAX_PRESET = 32
MAX_UNITS = 2**64 - 1
_HEAD = len(MAGIC) + 2 + 16  # magic, version, action, order id
_B64URL = re.compile(rb"^[A-Za-z0-9_-]*$")


class Action(enum.IntEnum):
    CREATE = 1
    ADD = 2
    STOP = 3


class MemoFault(enum.Enum):
    """Why a memo is not valid; each is a refund reason the user can read."""

    EMPTY = "empty"  # the payment has no memo
    TOO_LONG = "too_long"  # longer than Mixin's extra limit
    NOT_BASE64URL = "not_base64url"  # not base64url text without padding, or not its canonical form
    TOO_SHORT = "too_short"  # fewer bytes than the smallest memo
    BAD_MAGIC = "bad_magic"  # not a mixmaker memo
    UNSUPPORTED_VERSION = "unsupported_version"
    BAD_CHECKSUM = "bad_checksum"  # mistyped or cut when pasted
    UNKNOWN_ACTION = "unknown_action"
    BAD_FIELD = "bad_field"  # a field is cut, empty, not UTF-8, or not a valid value
    TRAILING_BYTES = "trailing_bytes"  # bytes after the action's last field

    @property
    def words(self) -> str:
        return _WORDS[self]


_WORDS = {
    MemoFault.EMPTY: "the payment has no memo",
    MemoFault.TOO_LONG: f"the memo is longer than {EXTRA_LIMIT} bytes",
    MemoFault.NOT_BASE64URL: "the memo is not base64url text (A-Z a-z 0-9 - _, no padding)",
    MemoFault.TOO_SHORT: "the memo is too short to be a mixmaker memo",
    MemoFault.BAD_MAGIC: "the memo is not a mixmaker memo (it does not start with MM)",
    MemoFault.UNSUPPORTED_VERSION: "the memo's protocol version is not supported",
    MemoFault.BAD_CHECKSUM: "the memo's checksum does not match (mistyped or cut when pasted?)",
    MemoFault.UNKNOWN_ACTION: "the memo asks for an action this bot does not know",
    MemoFault.BAD_FIELD: "a field of the memo is not valid",
    MemoFault.TRAILING_BYTES: "the memo has extra bytes after its last field",
}


class MemoError(UserError, ValueError):
    """A memo that is not exactly valid; `fault` says why, `detail` says where."""

    def __init__(self, fault: MemoFault, detail: str = "") -> None:
        self.fault = fault
        self.detail = detail
        super().__init__(f"{fault.value}: {fault.words}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True, slots=True)
class CreateMemo:
    order_id: str  # canonical lower-case UUID
    market: str
    preset: str
    base_units: int  # Mixin units (1e-8)
    quote_units: int
    action = Action.CREATE


@dataclass(frozen=True, slots=True)
class AddMemo:
    order_id: str
    action = Action.ADD


@dataclass(frozen=True, slots=True)
class StopMemo:
    order_id: str
    action = Action.STOP


Memo = CreateMemo | AddMemo | StopMemo


# --- encoding ---------------------------------------------------------------------------------


def new_order_id() -> str:
    return str(uuid.uuid4())


def encode(memo: Memo) -> bytes:
    """The binary record (checked as strictly as `decode` would, so a bad memo is never made)."""
    body = bytearray(MAGIC)
    body += bytes((VERSION, memo.action.value))
    body += _order_id_bytes(memo.order_id)
    if isinstance(memo, CreateMemo):
        for name, value, limit in (("market", memo.market, MAX_MARKET), ("preset", memo.preset, MAX_PRESET)):
            raw = value.encode()
            if not 0 < len(raw) <= limit:
                raise MemoError(MemoFault.BAD_FIELD, f"{name} must be 1..{limit} bytes")
            body.append(len(raw))
            body += raw
        for name, units in (("base", memo.base_units), ("quote", memo.quote_units)):
            if type(units) is not int or not 0 <= units <= MAX_UNITS:
                raise MemoError(MemoFault.BAD_FIELD, f"{name} amount must be 0..{MAX_UNITS} units")
        body += struct.pack(">QQ", memo.base_units, memo.quote_units)
        _check_create(memo)
    body += _checksum(bytes(body))
    return bytes(body)


def to_text(memo: Memo) -> str:
    """What the user pastes into the wallet's memo field."""
    return base64.urlsafe_b64encode(encode(memo)).rstrip(b"=").decode()


def to_extra(memo: Memo) -> bytes:
    """The transaction extra: the ASCII bytes of `to_text`."""
    return to_text(memo).encode()


# --- decoding ---------------------------------------------------------------------------------


def decode_extra(extra: bytes) -> Memo:
    """A snapshot's memo (the hex-decoded extra) -> the memo it asks for; `MemoError` otherwise."""
    if not extra:
        raise MemoError(MemoFault.EMPTY)
    if len(extra) > EXTRA_LIMIT:
        raise MemoError(MemoFault.TOO_LONG, f"{len(extra)} bytes")
    return decode(_unbase64url(bytes(extra)))


def decode(data: bytes) -> Memo:
    """The binary record -> the memo; `MemoError` unless it is exactly valid."""
    if len(data) < len(MAGIC):
        raise MemoError(MemoFault.TOO_SHORT, f"{len(data)} bytes")
    if data[: len(MAGIC)] != MAGIC:
        raise MemoError(MemoFault.BAD_MAGIC)
    if len(data) < len(MAGIC) + 1:
        raise MemoError(MemoFault.TOO_SHORT, f"{len(data)} bytes")
    if data[len(MAGIC)] != VERSION:
        raise MemoError(MemoFault.UNSUPPORTED_VERSION, f"version {data[len(MAGIC)]}, this bot reads {VERSION}")
    if len(data) < _HEAD + CHECKSUM_BYTES:
        raise MemoError(MemoFault.TOO_SHORT, f"{len(data)} bytes, at least {_HEAD + CHECKSUM_BYTES}")
    body, check = data[:-CHECKSUM_BYTES], data[-CHECKSUM_BYTES:]
    if _checksum(body) != check:
        raise MemoError(MemoFault.BAD_CHECKSUM)
    action_byte = body[len(MAGIC) + 1]
    try:
        action = Action(action_byte)
    except ValueError:
        raise MemoError(MemoFault.UNKNOWN_ACTION, f"action {action_byte}") from None
    order_id = _order_id(body[len(MAGIC) + 2:_HEAD])
    r = _Reader(body, _HEAD)
    memo: Memo
    if action is Action.CREATE:
        market = r.text("market", MAX_MARKET)
        preset = r.text("preset", MAX_PRESET)
        base, quote = r.u64("base amount"), r.u64("quote amount")
        memo = CreateMemo(order_id, market, preset, base, quote)
        _check_create(memo)
    elif action is Action.ADD:
        memo = AddMemo(order_id)
    else:
        memo = StopMemo(order_id)
    if r.pos != len(body):
        raise MemoError(MemoFault.TRAILING_BYTES, f"{len(body) - r.pos} bytes after the {action.name} fields")
    return memo


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise MemoError(MemoFault.BAD_FIELD, f"{what} is cut short")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def text(self, what: str, limit: int) -> str:
        n = self.take(1, what)[0]
        if not 0 < n <= limit:
            raise MemoError(MemoFault.BAD_FIELD, f"{what} length {n}, must be 1..{limit}")
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise MemoError(MemoFault.BAD_FIELD, f"{what} is not UTF-8") from None

    def u64(self, what: str) -> int:
        return int.from_bytes(self.take(8, what), "big")


def _check_create(m: CreateMemo) -> None:
    try:
        parse_market_name(m.market)
    except CatalogError:
        raise MemoError(MemoFault.BAD_FIELD, f"market {m.market!r} is not VENUE:BASE/QUOTE") from None
    try:
        _check_name("preset", m.preset)
    except CatalogError:
        raise MemoError(MemoFault.BAD_FIELD, f"preset {m.preset!r} is not a preset name") from None
    if m.base_units == 0 and m.quote_units == 0:
        raise MemoError(MemoFault.BAD_FIELD, "a create memo must expect some base or quote funding")


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()[:CHECKSUM_BYTES]


def _order_id(raw: bytes) -> str:
    if raw == bytes(16):
        raise MemoError(MemoFault.BAD_FIELD, "the order id is the nil UUID")
    return str(uuid.UUID(bytes=raw))


def _order_id_bytes(order_id: str) -> bytes:
    try:
        raw = uuid.UUID(order_id).bytes
    except (ValueError, AttributeError, TypeError):
        raise MemoError(MemoFault.BAD_FIELD, f"order id {order_id!r} is not a UUID") from None
    _order_id(raw)
    return raw


def _unbase64url(text: bytes) -> bytes:
    # Strict: the alphabet only, no padding, and the canonical form (unused bits zero), so one
    # memo has exactly one spelling.
    if text != text.strip():
        raise MemoError(MemoFault.NOT_BASE64URL, "whitespace around the memo (pasted with a newline?)")
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise MemoError(MemoFault.NOT_BASE64URL)
    try:
        data = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MemoError(MemoFault.NOT_BASE64URL) from None
    if base64.urlsafe_b64encode(data).rstrip(b"=") != text:
        raise MemoError(MemoFault.NOT_BASE64URL, "not the canonical spelling")
    return data


# --- explaining -------------------------------------------------------------------------------


def describe(memo: Memo) -> str:
    """One memo in words (amounts in Mixin's 8 decimals)."""
    from mixmaker.money import MIXIN_DECIMALS, format_units

    if isinstance(memo, CreateMemo):
        base, _, quote = parse_market_name(memo.market)[1].partition("/")
        return (f"CREATE order {memo.order_id} in pool {memo.market} with preset {memo.preset}, funded when "
                f"{format_units(memo.base_units, MIXIN_DECIMALS, trim=True)} {base} and "
                f"{format_units(memo.quote_units, MIXIN_DECIMALS, trim=True)} {quote} have arrived")
    if isinstance(memo, AddMemo):
        return f"ADD this payment to order {memo.order_id}"
    return f"STOP order {memo.order_id} and pay it out (this payment comes back with the payout)"


def explain(text: str) -> tuple[Memo | None, list[str]]:
    """Any memo as a user or an operator has it: the snapshot's hex, or the base64url text a
    user pasted. Returns the memo (None if invalid) and what was found, line by line."""
    raw = text.strip().encode()
    attempts: list[tuple[str, bytes]] = []
    if raw and len(raw) % 2 == 0 and re.fullmatch(rb"[0-9a-fA-F]+", raw):
        attempts.append(("hex of the transaction extra", bytes.fromhex(raw.decode())))
    attempts.append(("base64url memo text", raw))
    lines: list[str] = []
    for form, extra in attempts:
        try:
            memo = decode_extra(extra)
        except MemoError as e:
            lines.append(f"as {form}: invalid: {e}")
            continue
        return memo, [f"as {form}: valid mixmaker memo v{VERSION}", describe(memo)]
    return None, lines
