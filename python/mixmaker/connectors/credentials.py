"""An exchange API key and secret. The secret never prints: not in a repr, a log or an error."""

from __future__ import annotations

import hashlib
import hmac


class ApiCredentials:
    __slots__ = ("key", "_secret")

    def __init__(self, key: str, secret: str) -> None:
        if not key or not secret:
            raise ValueError("an API key and its secret are both required")
        self.key = key
        self._secret = secret.encode()

    def sign(self, payload: str) -> str:
        """HMAC-SHA256 of `payload`, hex: Binance's signature for REST and the WebSocket API."""
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def reveal(self) -> str:
        """The secret itself, for a library that signs on its own (ccxt); nowhere else."""
        return self._secret.decode()

    def __repr__(self) -> str:
        return f"ApiCredentials(key={self.key[:4]}..., secret=***)"

    __str__ = __repr__

    def __reduce__(self):  # pickling would copy the secret somewhere we cannot see
        raise TypeError("ApiCredentials cannot be pickled")
