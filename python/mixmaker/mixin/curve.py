"""Ed25519 / Curve25519 arithmetic the Mixin kernel relies on (libsodium via PyNaCl).

Standard Ed25519 signs with a seed; the kernel signs with a bare scalar (a view key plus the
spend scalar), so signing here follows the kernel's own deterministic recipe over a scalar.
"""

from __future__ import annotations

import hashlib

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl import bindings as sodium

L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point


def _reduce(wide: bytes) -> bytes:
    """A 64-byte little-endian number reduced mod L (what the SDKs call SetUniformBytes)."""
    return sodium.crypto_core_ed25519_scalar_reduce(wide)


def canonical_scalar(b: bytes) -> bytes:
    if len(b) != 32 or int.from_bytes(b, "little") >= L:
        raise ValueError("not a canonical Ed25519 scalar")
    return b


def spend_scalar(seed: bytes) -> bytes:
    """The clamped SHA-512 half of a seed, reduced: the private scalar behind its public key."""
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return _reduce(bytes(h) + bytes(32))


def public_from_seed(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def public_from_scalar(scalar: bytes) -> bytes:
    return sodium.crypto_scalarmult_ed25519_base_noclamp(canonical_scalar(scalar))


def scalar_add(a: bytes, b: bytes) -> bytes:
    return sodium.crypto_core_ed25519_scalar_add(a, b)


def scalar_from_bytes(wide64: bytes) -> bytes:
    return _reduce(wide64)


def sign_with_scalar(scalar: bytes, message: bytes) -> bytes:
    """Deterministic Ed25519 signature with a private scalar (the kernel's recipe)."""
    scalar = canonical_scalar(scalar)
    prefix = hashlib.sha512(scalar).digest()[32:]
    r = _reduce(hashlib.sha512(prefix + message).digest())
    big_r = sodium.crypto_scalarmult_ed25519_base_noclamp(r)
    pub = sodium.crypto_scalarmult_ed25519_base_noclamp(scalar)
    k = _reduce(hashlib.sha512(big_r + pub + message).digest())
    s = sodium.crypto_core_ed25519_scalar_add(sodium.crypto_core_ed25519_scalar_mul(k, scalar), r)
    return big_r + s


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def hash_scalar(point: bytes, index: int) -> bytes:
    """The kernel's output-key scalar: two rounds of blake3 expansion, each reduced mod L."""
    h = blake3.blake3(point + _uvarint(index)).digest()
    s = _reduce(h + blake3.blake3(h).digest())
    h = blake3.blake3(s).digest()
    return _reduce(h + blake3.blake3(h).digest())


def scalar_mult(scalar: bytes, point: bytes) -> bytes:
    return sodium.crypto_scalarmult_ed25519_noclamp(canonical_scalar(scalar), point)


def ghost_public_key(r: bytes, view_public: bytes, spend_public: bytes, index: int) -> bytes:
    """One-time key for a receiver (A = view, B = spend): hash_scalar(r*A, i)*G + B."""
    x = hash_scalar(scalar_mult(r, view_public), index)
    return sodium.crypto_core_ed25519_add(public_from_scalar(x), spend_public)


def ghost_view_scalar(view_private: bytes, mask: bytes, index: int) -> bytes:
    """The receiver's side of the same key: hash_scalar(a*R, i); add the spend scalar to sign."""
    return hash_scalar(scalar_mult(view_private, mask), index)


def curve25519_private(seed: bytes) -> bytes:
    return sodium.crypto_sign_ed25519_sk_to_curve25519(seed + public_from_seed(seed))


def curve25519_public(ed25519_public: bytes) -> bytes:
    return sodium.crypto_sign_ed25519_pk_to_curve25519(ed25519_public)


def pin_key(session_seed: bytes, server_public_key: bytes) -> bytes:
    """AES-256 key for PIN/TIP ciphertexts: X25519(our session key, the server's key)."""
    return sodium.crypto_scalarmult(curve25519_private(session_seed), curve25519_public(server_public_key))
