"""The bot's keystore: the developer-dashboard JSON, loaded with its keys kept secret."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixmaker.errors import MixmakerError
from mixmaker.mixin import curve
from mixmaker.mixin.ids import parse_uuid
from mixmaker.mixin.secret import Secret


class KeystoreError(MixmakerError, ValueError):
    """The keystore is missing, unsafe or malformed; the message says which field or what to do."""


def _hex32(d: Mapping[str, Any], name: str, *, seed: bool) -> bytes:
    raw = d.get(name)
    if not isinstance(raw, str):
        raise KeystoreError(f"keystore field {name!r} is missing (a hex string)")
    try:
        b = bytes.fromhex(raw)
    except ValueError:
        raise KeystoreError(f"keystore field {name!r} is not hex") from None
    # Some tools store a private key as seed||public (64 bytes); the seed is the first half.
    if seed and len(b) == 64:
        b = b[:32]
    if len(b) != 32:
        raise KeystoreError(f"keystore field {name!r} must be 32 bytes, got {len(b)}")
    return b


@dataclass(frozen=True, repr=False)
class Keystore:
    app_id: str
    session_id: str
    session_private_key: Secret
    server_public_key: bytes
    spend_private_key: Secret | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Keystore:
        if not isinstance(d, Mapping):
            raise KeystoreError("a keystore is a JSON object")
        app = d.get("app_id") or d.get("client_id")
        if not app:
            raise KeystoreError("keystore field 'app_id' is missing")
        try:
            app_id = parse_uuid(app, "app_id")
            session_id = parse_uuid(d.get("session_id") or "", "session_id")
        except ValueError as e:
            raise KeystoreError(str(e)) from None
        if "private_key" in d and "session_private_key" not in d:
            raise KeystoreError("this is a legacy keystore (private_key/pin_token): download a current one")
        session = _hex32(d, "session_private_key", seed=True)
        server = _hex32(d, "server_public_key", seed=False)
        spend = _hex32(d, "spend_private_key", seed=True) if d.get("spend_private_key") else None
        return cls(
            app_id,
            session_id,
            Secret(session, "session_private_key"),
            server,
            Secret(spend, "spend_private_key") if spend else None,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keystore:
        p = Path(path)
        try:
            st = p.stat()
        except OSError as e:
            raise KeystoreError(f"cannot read the keystore {p}: {e.strerror}") from None
        if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeystoreError(
                f"the keystore {p} is readable by other users (mode {stat.S_IMODE(st.st_mode):o}): "
                f"run `chmod 600 {p}`"
            )
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            # Never echo the content: it is key material.
            raise KeystoreError(f"the keystore {p} is not valid JSON ({type(e).__name__})") from None
        return cls.from_dict(data)

    @property
    def session_public_key(self) -> bytes:
        return curve.public_from_seed(self.session_private_key.reveal())

    @property
    def spend_public_key(self) -> bytes:
        if self.spend_private_key is None:
            raise KeystoreError("the keystore has no spend_private_key: it cannot sign transactions")
        return curve.public_from_seed(self.spend_private_key.reveal())

    def __repr__(self) -> str:
        spend = "set" if self.spend_private_key else "none"
        return f"Keystore(app_id={self.app_id}, session_id={self.session_id}, keys=***, spend_key={spend})"

    __str__ = __repr__
