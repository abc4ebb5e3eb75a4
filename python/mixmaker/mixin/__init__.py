"""Mixin Safe API client: keystore, request signing, typed errors, the HTTP client and payments."""

from mixmaker.mixin.client import MixinClient
from mixmaker.mixin.errors import MixinApiError
from mixmaker.mixin.keystore import Keystore, KeystoreError

__all__ = ["Keystore", "KeystoreError", "MixinApiError", "MixinClient"]
