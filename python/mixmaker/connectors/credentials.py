"""An exchange API key and secret. Neither prints: not in a repr, a log, an error or a traceback
with locals; the secret never leaves this object (it signs, nobody reads it), and it cannot be
pickled or copied.

Frames that hold the secret can be shown by a traceback formatter that captures locals
(`traceback.TracebackException(capture_locals=True)`, pytest's `--showlocals`, rich): so the
constructor drops its argument before anything can raise, and signing checks its inputs before
the secret is handed to `hmac`.
"""

from __future__ import annotations

import hashlib
import hmac
from base64 import standard_b64encode
from collections.abc import Callable
from typing import Any, NoReturn

#: The digests ccxt signs with, by the constructor it passes (hashlib.sha256, ...).
_DIGESTS: dict[Callable[..., Any], str] = {
    hashlib.sha256: "sha256", hashlib.sha384: "sha384", hashlib.sha512: "sha512", hashlib.sha1: "sha1",
    hashlib.md5: "md5",
}
_MASK = "***"


class ApiCredentials:
    __slots__ = ("_secret", "key")

    def __init__(self, key: str, secret: str) -> None:
        self.key = key if isinstance(key, str) else ""
        self._secret = secret.encode() if isinstance(secret, str) else b""
        del key, secret  # from here on no frame of ours holds them (only `self`, whose repr masks them)
        if not self.key or not self._secret:
            raise ValueError("an API key and its secret are both required, as non-empty str")

    def sign(self, payload: str) -> str:
        """HMAC-SHA256 of `payload`, hex: Binance's signature for REST and the WebSocket API."""
        return self.hmac(payload, hashlib.sha256, "hex")  # type: ignore[return-value]

    def hmac(self, payload: str | bytes, algorithm: Callable[..., Any] = hashlib.sha256, digest: str = "hex") -> str | bytes:
        """HMAC of `payload` with the secret, as ccxt's `Exchange.hmac` returns it: `digest` is
        "hex", "base64", or anything else for the raw bytes."""
        if isinstance(payload, str):
            payload = payload.encode()
        if not isinstance(payload, (bytes, bytearray)):
            raise TypeError(f"signing needs str or bytes, got {type(payload).__name__}")
        name = _DIGESTS.get(algorithm)
        if name is None:
            raise ValueError(f"unsupported HMAC digest {algorithm!r} (supported: {sorted(_DIGESTS.values())})")
        raw = hmac.digest(self._secret, bytes(payload), name)
        if digest == "hex":
            return raw.hex()
        if digest == "base64":
            return standard_b64encode(raw).decode()
        return raw

    def redact(self, text: str) -> str:
        """`text` with the key and the secret masked (for third-party log lines)."""
        if not isinstance(text, str):
            raise TypeError(f"redact needs a str, got {type(text).__name__}")
        # No local holds the decoded secret: a traceback with locals would show it.
        return text.replace(self.key, _MASK).replace(self._secret.decode(errors="replace"), _MASK)

    def __repr__(self) -> str:
        # Binance keys are 64 characters: four identify one to its owner and reveal nothing.
        shown = f"{self.key[:4]}..." if len(self.key) >= 32 else _MASK
        return f"ApiCredentials(key={shown}, secret={_MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:  # pickling (and copying) would put the secret somewhere we cannot see
        raise TypeError("ApiCredentials cannot be pickled or copied")

    def __copy__(self) -> NoReturn:
        raise TypeError("ApiCredentials cannot be pickled or copied")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise TypeError("ApiCredentials cannot be pickled or copied")
