"""The per-request EdDSA JWT: `sig` binds the token to one method, request target and body."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mixmaker.mixin.keystore import Keystore

HEADER = {"alg": "EdDSA", "typ": "JWT"}
DEFAULT_LIFETIME_S = 600


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def request_sig(method: str, uri: str, body: bytes) -> str:
    """hex(SHA-256(METHOD + URI + BODY)); `uri` is the path and query exactly as sent."""
    return hashlib.sha256(method.upper().encode() + uri.encode() + body).hexdigest()


def sign_authentication_token(
    keystore: Keystore,
    method: str,
    uri: str,
    body: bytes,
    *,
    iat: int | None = None,
    exp: int | None = None,
    jti: str | None = None,
) -> str:
    if not uri.startswith("/"):
        raise ValueError(f"uri must be the request target starting with '/', got {uri!r}")
    now = int(time.time()) if iat is None else iat
    claims = {
        "uid": keystore.app_id,
        "sid": keystore.session_id,
        "iat": now,
        "exp": now + DEFAULT_LIFETIME_S if exp is None else exp,
        "jti": jti or str(uuid.uuid4()),
        "sig": request_sig(method, uri, body),
        "scp": "FULL",
    }
    signing_input = b64url(_compact(HEADER)) + "." + b64url(_compact(claims))
    key = Ed25519PrivateKey.from_private_bytes(keystore.session_private_key.reveal())
    return signing_input + "." + b64url(key.sign(signing_input.encode()))
