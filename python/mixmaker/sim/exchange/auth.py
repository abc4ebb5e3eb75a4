"""API keys and Binance's HMAC-SHA256 request signing, checked the way the venue checks it.

REST signs the exact received parameter string (query string, then body) without the
`signature` parameter; the WebSocket API signs its params sorted by key and raw-encoded.
Secrets live in `Secret`, which never prints.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from mixmaker.sim.exchange.errors import BadParameter, InvalidApiKey, InvalidSignature, TimestampOutsideWindow

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
FUTURE_TOLERANCE_MS = 1_000  # Binance refuses timestamps more than 1 s ahead of its clock


class Secret:
    """An API secret: usable for signing, never shown by repr/str/format."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value.encode()

    def sign(self, payload: bytes) -> str:
        return hmac.new(self._value, payload, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class ApiKey:
    key: str
    secret: Secret
    account: str


class KeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    def add(self, key: str, secret: str, account: str) -> ApiKey:
        api_key = ApiKey(key, Secret(secret), account)
        self._keys[key] = api_key
        return api_key

    def lookup(self, key: str | None) -> ApiKey:
        found = self._keys.get(key or "")
        if found is None:
            raise InvalidApiKey("API-key format invalid." if not key else None)
        return found

    def verify_rest(self, key: str | None, raw_query: str, raw_body: str, params: Mapping[str, str], now_ms: int) -> str:
        """The account a signed REST request acts for; typed errors as Binance answers them."""
        api_key = self.lookup(key)
        signature = params.get("signature")
        if not signature:
            raise BadParameter("Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        payload = _without_signature(raw_query) + _without_signature(raw_body)
        _check_signature(api_key.secret, payload, signature)
        check_timestamp(params, now_ms)
        return api_key.account

    def verify_ws(self, params: Mapping[str, object], now_ms: int) -> str:
        """The account of a signed WebSocket API request (`apiKey`, `timestamp`, `signature` in params)."""
        key = params.get("apiKey")
        api_key = self.lookup(key if isinstance(key, str) else None)
        signature = params.get("signature")
        if not isinstance(signature, str) or not signature:
            raise BadParameter("Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        payload = "&".join(f"{k}={as_param(v)}" for k, v in sorted(params.items()) if k != "signature")
        _check_signature(api_key.secret, payload, signature)
        check_timestamp({k: as_param(v) for k, v in params.items()}, now_ms)
        return api_key.account


def check_timestamp(params: Mapping[str, str], now_ms: int) -> None:
    try:
        timestamp = int(params["timestamp"])
        recv_window = int(params.get("recvWindow") or DEFAULT_RECV_WINDOW_MS)
    except (KeyError, ValueError):
        raise BadParameter("Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.") from None
    if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
        raise BadParameter("recvWindow must be less than 60000")
    if timestamp > now_ms + FUTURE_TOLERANCE_MS:
        raise TimestampOutsideWindow("Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - timestamp > recv_window:
        raise TimestampOutsideWindow("Timestamp for this request is outside of the recvWindow.")


def _check_signature(secret: Secret, payload: str, signature: str) -> None:
    if not hmac.compare_digest(secret.sign(payload.encode()), signature.lower()):
        raise InvalidSignature()


def _without_signature(raw: str) -> str:
    return "&".join(part for part in raw.split("&") if part and not part.startswith("signature="))


def as_param(value: object) -> str:
    """A WebSocket API parameter as it is signed: booleans as `true`/`false`, the rest as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
