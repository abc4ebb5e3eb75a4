"""Where a live run's secrets come from, and how a problem with them is told without the value:

- the Mixin keystore file (`mixin.keystore`): `mixmaker.mixin.keystore` loads it (keys held as
  `Secret`, the file's mode checked);
- exchange keys: two environment variables (`api_key_env`, `api_secret_env`) or a keys file (TOML
  or JSON with `api_key` and `api_secret`), read into `SecretStr` and handed over as
  `ApiCredentials` (whose secret never prints).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from mixmaker.connectors.credentials import ApiCredentials
from mixmaker.mixin.keystore import Keystore, KeystoreError


class ExchangeKeys(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    api_key: str
    api_secret: SecretStr

    def credentials(self) -> ApiCredentials:
        return ApiCredentials(self.api_key, self.api_secret.get_secret_value())


def exchange_keys(section: object) -> ApiCredentials:
    """The keys an `ExchangeSection` points at; ValueError says what is missing, never a value."""
    keys_file: Path | None = getattr(section, "keys_file", None)
    if keys_file is not None:
        try:
            text = Path(keys_file).read_text()
        except OSError as e:
            raise ValueError(f"{keys_file}: cannot be read ({e.strerror})") from None
        try:
            raw = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError):
            raise ValueError(f"{keys_file}: not JSON or TOML") from None
        try:
            keys = ExchangeKeys.model_validate(raw)
        except ValidationError as e:
            fields = ", ".join(".".join(map(str, err["loc"])) for err in e.errors(include_input=False))
            raise ValueError(f"{keys_file}: needs api_key and api_secret (problem with: {fields})") from None
        return keys.credentials()
    key_env, secret_env = getattr(section, "api_key_env", None), getattr(section, "api_secret_env", None)
    if key_env is None or secret_env is None:
        raise ValueError("no keys configured")
    missing = [name for name in (key_env, secret_env) if not os.environ.get(name)]
    if missing:
        raise ValueError(f"environment variable{'s' if len(missing) > 1 else ''} {', '.join(missing)} not set")
    return ExchangeKeys(api_key=os.environ[key_env], api_secret=SecretStr(os.environ[secret_env])).credentials()


def load_keystore(path: Path) -> Keystore:
    return Keystore.from_file(path)


def keystore_problem(path: Path | None) -> str | None:
    if path is None:
        return "a live run needs the bot's keystore file"
    try:
        load_keystore(path)
    except KeystoreError as e:
        return str(e)
    except OSError as e:
        return f"{path}: cannot be read ({e.strerror})"
    return None
