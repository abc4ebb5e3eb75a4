"""PIN/TIP ciphertexts: AES-256-CBC under the session/server X25519 key, single use.

plaintext = pin || LE64(unix seconds) || LE64(iterator) || PKCS7; the iterator strictly
increases, also when the clock does not (a repeated iterator is refused by Mixin)."""

from __future__ import annotations

import base64
import os
import threading
import time

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mixmaker.mixin import curve
from mixmaker.mixin.keystore import Keystore


class Iterator:
    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return self._last


def encrypt_pin(keystore: Keystore, pin: bytes, iterator: int, *, now: int | None = None, iv: bytes | None = None) -> str:
    key = curve.pin_key(keystore.session_private_key.reveal(), keystore.server_public_key)
    body = pin + int(time.time() if now is None else now).to_bytes(8, "little") + iterator.to_bytes(8, "little")
    padder = padding.PKCS7(128).padder()
    data = padder.update(body) + padder.finalize()
    iv = os.urandom(16) if iv is None else iv
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.urlsafe_b64encode(iv + enc.update(data) + enc.finalize()).rstrip(b"=").decode()


def decrypt_pin(key: bytes, pin_base64: str) -> tuple[bytes, int, int]:
    """(pin, unix seconds, iterator) from a ciphertext; the server side of `encrypt_pin`."""
    raw = base64.urlsafe_b64decode(pin_base64 + "=" * (-len(pin_base64) % 4))
    dec = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    body = unpadder.update(dec.update(raw[16:]) + dec.finalize()) + unpadder.finalize()
    return body[:-16], int.from_bytes(body[-16:-8], "little"), int.from_bytes(body[-8:], "little")
