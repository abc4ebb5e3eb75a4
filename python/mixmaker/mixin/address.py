"""Mixin kernel addresses (`XIN...`): base58 of spend public key || view public key || a
4-byte SHA3-256 checksum over the "XIN" prefix and the keys."""

from __future__ import annotations

import hashlib

from mixmaker.errors import MixmakerError

PREFIX = "XIN"
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class AddressError(MixmakerError, ValueError):
    pass


def _b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        i = _ALPHABET.find(ch)
        if i < 0:
            raise AddressError(f"{ch!r} is not a base58 character")
        n = n * 58 + i
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\x00"))) + out


def _checksum(keys: bytes) -> bytes:
    return hashlib.sha3_256(PREFIX.encode() + keys).digest()[:4]


def parse_kernel_address(address: str) -> tuple[bytes, bytes]:
    """(spend public key, view public key) of a `XIN...` address; AddressError if malformed."""
    if not address.startswith(PREFIX):
        raise AddressError(f"a kernel address starts with {PREFIX}")
    data = _b58decode(address[len(PREFIX):])
    if len(data) != 68:
        raise AddressError(f"a kernel address holds 68 bytes, this one {len(data)}")
    if _checksum(data[:64]) != data[64:]:
        raise AddressError("kernel address checksum mismatch")
    return data[:32], data[32:64]


def format_kernel_address(spend_public: bytes, view_public: bytes) -> str:
    keys = spend_public + view_public
    if len(keys) != 64:
        raise AddressError("two 32-byte public keys make a kernel address")
    return PREFIX + _b58encode(keys + _checksum(keys))
