"""A ccxt exchange that signs through our `ApiCredentials` and never holds the secret.

ccxt keeps the API secret in a plain attribute (`exchange.secret`: pickled, deep-copied, shown by
anything that walks attributes), reads it in `sign()` and hands it to `self.hmac(...)`. Here the
attribute holds a placeholder (non-empty, so ccxt's credential checks pass) and `hmac`, given
that placeholder, signs through `ApiCredentials`: the secret never enters ccxt, not as an
attribute, not as a local of one of its frames. A venue that uses the secret any other way
(RSA or Ed25519 keys, a base64-decoded secret) signs with the placeholder and is refused by the
venue: it fails closed.

The API key has to be in ccxt (it goes in a header), so ccxt must not print it: `verbose` is
forced off (it prints every request's headers), `log` prints nothing, ccxt's own DEBUG lines go
through a logger that masks the key, and the exchange cannot be pickled or copied.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from mixmaker.connectors.credentials import ApiCredentials

#: What `exchange.secret` holds instead of the secret.
PLACEHOLDER = "<sealed: signs through ApiCredentials>"
_PLACEHOLDER_BYTES = PLACEHOLDER.encode()

_CREDENTIAL_KEYS = ("apiKey", "secret", "password", "privateKey")
_REFUSED = "pass the API key and secret as ApiCredentials, not in the ccxt config"

log = logging.getLogger("mixmaker.connectors.ccxt")


class _Masking(logging.Filter):
    """Rewrites a ccxt log record with the key and the secret masked."""

    def __init__(self, credentials: ApiCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._credentials.redact(record.getMessage())
        record.args = None
        return True


def _masking_logger(credentials: ApiCredentials, venue: str) -> logging.Logger:
    """A logger of its own (outside the logging registry, so it goes with the exchange) that
    masks, then hands records on to `mixmaker.connectors.ccxt`'s handlers."""
    lg = logging.Logger(f"{log.name}.{venue}")  # noqa: LOG001 - not registered: it dies with its exchange
    lg.parent = log
    lg.addFilter(_Masking(credentials))
    return lg


def _verbose_off(self: Any, value: Any) -> None:
    if value:
        log.warning("%s: ccxt verbose stays off: it prints request headers, the API key among them", self.id)


@functools.cache
def sealed_class(cls: type) -> type:
    """`cls` (a ccxt exchange class, REST or pro) with the secret sealed; see the module note."""

    class Sealed(cls):  # type: ignore[misc]
        _mixmaker_credentials: ApiCredentials

        verbose = property(lambda self: False, _verbose_off)

        def __init__(self, credentials: ApiCredentials, config: dict[str, Any] | None = None) -> None:
            clean = {k: v for k, v in (config or {}).items() if k not in _CREDENTIAL_KEYS}
            refused = len(clean) != len(config or {})
            del config  # a traceback with locals must not show what the caller put in it
            if refused:
                raise ValueError(_REFUSED)
            if not isinstance(credentials, ApiCredentials):
                raise TypeError(f"credentials must be ApiCredentials, got {type(credentials).__name__}")
            self._mixmaker_credentials = credentials
            super().__init__({**clean, "apiKey": credentials.key, "secret": PLACEHOLDER})
            self.logger = _masking_logger(credentials, self.id)

        def hmac(self, request: Any, secret: Any, algorithm: Callable[..., Any] = hashlib.sha256,
                 digest: str = "hex") -> Any:
            if secret == _PLACEHOLDER_BYTES or secret == PLACEHOLDER:
                return self._mixmaker_credentials.hmac(request, algorithm, digest)
            return super().hmac(request, secret, algorithm, digest)

        def log(self, *args: Any) -> None:
            """ccxt's `print` of requests and responses: never."""

        def __reduce_ex__(self, protocol: Any) -> Any:
            raise TypeError(f"{self.id}: a sealed ccxt exchange cannot be pickled or copied")

        def __deepcopy__(self, memo: Any) -> Any:
            raise TypeError(f"{self.id}: a sealed ccxt exchange cannot be pickled or copied")

    Sealed.__name__ = Sealed.__qualname__ = f"Sealed{cls.__name__}"
    return Sealed


def sealed_exchange(cls: type, credentials: ApiCredentials, config: dict[str, Any] | None = None) -> Any:
    """An instance of ccxt exchange class `cls` (e.g. `ccxt.async_support.binance`) configured by
    `config` (without apiKey/secret) that signs with `credentials`."""
    clean = {k: v for k, v in (config or {}).items() if k not in _CREDENTIAL_KEYS}
    refused = len(clean) != len(config or {})
    del config  # a traceback with locals must not show what the caller put in it
    if refused:
        raise ValueError(_REFUSED)
    return sealed_class(cls)(credentials, clean)
