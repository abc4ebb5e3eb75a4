"""Mixin identifiers: UniqueObjectId (deterministic request ids), HashMembers, kernel asset id.

Mixin's `crypto.Sha256Hash` is SHA3-256, so both hash helpers here use SHA3-256.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable


def unique_object_id(*args: str) -> str:
    """MD5 of the concatenated arguments, shaped as a version-3 UUID (the SDKs' recipe)."""
    if not args:
        raise ValueError("unique_object_id needs at least one argument")
    b = bytearray(hashlib.md5("".join(args).encode()).digest())
    b[6] = (b[6] & 0x0F) | 0x30
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def unique_conversation_id(a: str, b: str) -> str:
    return unique_object_id(min(a, b), max(a, b))


def hash_members(ids: Iterable[str]) -> str:
    """SHA3-256 hex of the sorted member ids concatenated without separator."""
    members = sorted(ids)
    if not members:
        raise ValueError("hash_members needs at least one member")
    return hashlib.sha3_256("".join(members).encode()).hexdigest()


def kernel_asset_id(asset_id: str) -> str:
    return hashlib.sha3_256(asset_id.encode()).hexdigest()


def parse_uuid(value: str, what: str = "id") -> str:
    """The canonical lower-case form of a UUID string; ValueError names the field otherwise."""
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"{what} must be a UUID, got {value!r}") from None
