"""The server side of authentication: what Mixin checks on every request's JWT."""

from __future__ import annotations

import json
from typing import Any

from mixmaker.mixin import curve
from mixmaker.mixin.auth import b64url_decode, request_sig
from mixmaker.sim.mixin.state import SimError, SimState

MAX_LIFETIME_S = 90 * 24 * 3600  # the Go SDK's 90 days is the longest any SDK asks for


def authenticate(state: SimState, authorization: str | None, method: str, raw_target: str, body: bytes) -> str:
    """The caller's user id, or SimError(401) saying what was wrong (the real server says less)."""
    if not authorization or not authorization.startswith("Bearer "):
        raise SimError(401, {"reason": "missing bearer token"})
    token = authorization[len("Bearer "):].strip()
    parts = token.split(".")
    if len(parts) != 3:
        raise SimError(401, {"reason": "malformed token"})
    try:
        header: dict[str, Any] = json.loads(b64url_decode(parts[0]))
        claims: dict[str, Any] = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError:
        raise SimError(401, {"reason": "malformed token"}) from None
    if header.get("alg") != "EdDSA":
        raise SimError(401, {"reason": "only EdDSA tokens are accepted"})
    with state.lock:
        user_id = state.sessions.get(str(claims.get("sid")))
        user = state.users.get(user_id) if user_id else None
        if user_id is None or user is None or claims.get("uid") != user_id:
            raise SimError(401, {"reason": "unknown session"})
        key = user.session_keys[claims["sid"]]
    # Verify the signature, never compare bytes: SDKs order the claims differently.
    if not curve.verify(key, (parts[0] + "." + parts[1]).encode(), signature):
        raise SimError(401, {"reason": "bad signature"})
    now = state.clock.now_s()
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or exp < now:
        raise SimError(401, {"reason": "token expired"})
    if isinstance(iat, int) and exp - iat > MAX_LIFETIME_S:
        raise SimError(401, {"reason": "token lifetime above 90 days"})
    if claims.get("sig") != request_sig(method, raw_target, body):
        raise SimError(401, {"reason": "sig does not match the request"})
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise SimError(401, {"reason": "token without jti"})
    with state.lock:
        if jti in state.seen_jti:
            raise SimError(401, {"reason": "token reused"})
        state.seen_jti.add(jti)
    return user_id
