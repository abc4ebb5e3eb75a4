"""The server checks what Mixin checks on every request, and a third-party SDK (`mixinsdk` from
PyPI, its own signing code) is accepted; wrong sig, expired token and foreign key are refused."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from mixin_world import make_world, run
from mixinsdk.clients._sign import sign_authentication_token as sdk_sign
from mixinsdk.clients.client_http import HttpClient_WithAppConfig
from mixinsdk.clients.config import AppConfig
from mixinsdk.types.errors import RequestError

from mixmaker.mixin import Keystore, curve
from mixmaker.mixin.amounts import to_units
from mixmaker.mixin.errors import UnauthorizedError
from mixmaker.sim.mixin.setup import BTC


@pytest.fixture
def world():
    w = make_world(seed=3)
    yield w
    w.server.stop()


def sdk_client(bot: dict[str, str], url: str) -> HttpClient_WithAppConfig:
    seed = bytes.fromhex(bot["session_private_key"])
    # mixinsdk takes the legacy shape: base64url of the 64-byte Ed25519 private key.
    private_key = base64.urlsafe_b64encode(seed + curve.public_from_seed(seed)).decode()
    pin_token = base64.urlsafe_b64encode(curve.curve25519_public(bytes.fromhex(bot["server_public_key"]))).decode()
    cfg = AppConfig(None, bot["app_id"], bot["session_id"], pin_token, private_key)
    return HttpClient_WithAppConfig(cfg, api_base=url)


def test_mixinsdk_signing_is_accepted(world):
    alice = world.state.add_user(full_name="alice")
    world.state.deposit(alice.user_id, BTC, to_units("1"))
    world.state.user_sends(alice.user_id, world.bot["app_id"], BTC, to_units("0.25"), b"mm:1")
    sdk = sdk_client(world.bot, world.server.url)
    assert sdk.api.user.get_me()["data"]["user_id"] == world.bot["app_id"]
    assert sdk.http.get("/safe/me")["data"]["has_safe"] is True
    # a query built by hand without URL encoding (colons, dots), signed as sent
    page = sdk.http.get("/safe/snapshots", {"offset": "2020-01-01T00:00:00.000000000Z", "limit": 500, "order": "ASC"})
    assert [(s["amount"], bytes.fromhex(s["memo"])) for s in page["data"]] == [("0.25", b"mm:1")]
    # a POST body from json.dumps with its spaces: sig covers those exact bytes
    assets = sdk.http.post("/safe/assets/fetch", [BTC])["data"]
    assert [a["symbol"] for a in assets] == ["BTC"]


def test_mixinsdk_with_a_wrong_sig_is_refused(world):
    sdk = sdk_client(world.bot, world.server.url)
    good = sdk.http.get_auth_token
    sdk.http.get_auth_token = lambda method, uri, body: good(method, "/safe/assets", body)  # signs another target
    with pytest.raises(RequestError) as e:
        sdk.http.get("/safe/me")
    assert e.value.status_code == 401
    sdk.http.get_auth_token = lambda method, uri, body: good(method, uri, body + " ")  # another body
    with pytest.raises(RequestError) as e:
        sdk.http.post("/safe/assets/fetch", [BTC])
    assert e.value.status_code == 401


def test_mixinsdk_token_expires(world):
    sdk = sdk_client(world.bot, world.server.url)
    assert sdk.http.get("/safe/me")["data"]
    world.state.clock.advance(201)  # mixinsdk tokens live 200 s; the server's clock is now past them
    with pytest.raises(RequestError) as e:
        sdk.http.get("/safe/me")
    assert e.value.status_code == 401


def test_mixinsdk_with_a_foreign_key_is_refused(world):
    foreign = dict(world.bot, session_private_key=bytes(range(32)).hex())  # same ids, key not registered
    with pytest.raises(RequestError) as e:
        sdk_client(foreign, world.server.url).http.get("/safe/me")
    assert e.value.status_code == 401
    unknown_session = dict(world.bot, session_id=str(uuid.uuid4()))
    with pytest.raises(RequestError) as e:
        sdk_client(unknown_session, world.server.url).http.get("/safe/me")
    assert e.value.status_code == 401


def _raw_get(world, path: str, token: str | None):
    import urllib.request

    req = urllib.request.Request(world.server.url + path, headers={"X-Request-Id": "r-1", **(
        {"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req) as resp:
        return resp.status, resp.headers["X-Request-Id"], json.loads(resp.read())


def test_errors_are_http_202_with_the_code_and_the_request_id_is_echoed(world):
    status, echoed, body = _raw_get(world, "/safe/me", None)
    assert (status, echoed, body["error"]["code"]) == (202, "r-1", 401)
    seed = bytes.fromhex(world.bot["session_private_key"])
    token = sdk_sign(world.bot["app_id"], world.bot["session_id"], seed, "EdDSA", "GET", "/safe/me", "")
    status, _, body = _raw_get(world, "/safe/me", token)
    assert status == 200 and body["data"]["user_id"] == world.bot["app_id"]
    status, _, body = _raw_get(world, "/safe/me", token)  # the same token again: a jti is single use
    assert (status, body["error"]["code"]) == (202, 401)
    status, _, body = _raw_get(world, "/safe/me", "not.a.jwt")
    assert body["error"]["code"] == 401


def test_our_client_is_refused_with_a_typed_error(world):
    from mixmaker.mixin import MixinClient

    bad = Keystore.from_dict(dict(world.bot, session_private_key=bytes(range(32)).hex()))

    async def main():
        async with MixinClient(bad, world.server.url) as c:
            with pytest.raises(UnauthorizedError) as e:
                await c.me()
            assert e.value.code == 401 and e.value.request_id
        async with world.client() as c:
            assert (await c.me())["user_id"] == world.bot["app_id"]
            world.state.clock.advance(3600)  # the server is an hour ahead: a 10-minute token has expired
            with pytest.raises(UnauthorizedError):
                await c.me()

    run(main())
