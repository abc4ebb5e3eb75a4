"""Mixin Safe API client: keystore, request signing, typed errors, the HTTP client and payments."""

from mixmaker.mixin.errors import MixinApiError
from mixmaker.mixin.keystore import Keystore, KeystoreError

__all__ = ["Keystore", "KeystoreError", "MixinApiError", "MixinClient"]


def __getattr__(name: str):
    # The HTTP client pulls in aiohttp; import it only when asked for.
    if name == "MixinClient":
        from mixmaker.mixin.client import MixinClient

        return MixinClient
    raise AttributeError(name)
