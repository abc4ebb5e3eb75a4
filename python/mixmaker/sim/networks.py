"""Blockchain networks as the simulators show them: addresses and transaction hashes shaped like
the real chain's, so each venue's address checks accept the other venue's addresses.

A network is named by its native coin's symbol ("BTC", "ETH", "EOS"), which is both Binance's
`network` name and the `symbol` of the Mixin asset that a `chain_id` points at. A token on the
simulated chain is (network, symbol): USDT on ETH is ("ETH", "USDT") on both venues.
"""

from __future__ import annotations

import hashlib

EVM = frozenset({"ETH", "BSC", "ARBITRUM", "OPTIMISM", "MATIC", "AVAXC", "BASE"})
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _digest(seed: str, n: int) -> bytes:
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}#{i}".encode()).digest()
        i += 1
    return out[:n]


def address(network: str, seed: str) -> str:
    """A deterministic address on `network` for `seed` (the same seed, the same address)."""
    if network in EVM:
        return "0x" + _digest(seed, 20).hex()
    if network == "BTC":
        return "bc1q" + "".join(_BECH32[b % 32] for b in _digest(seed, 38))
    if network == "TRX":
        return "T" + "".join(_BASE58[b % 58] for b in _digest(seed, 33))
    return "sim" + _digest(seed, 20).hex()[:37]


def tx_hash(network: str, seed: str) -> str:
    """A deterministic transaction hash on `network` (EVM chains write it 0x-prefixed)."""
    h = hashlib.sha256(f"tx:{network}:{seed}".encode()).hexdigest()
    return "0x" + h if network in EVM else h
