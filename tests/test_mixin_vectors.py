"""Every test vector of the Mixin reference (§20) and the official SDK's Safe transaction
encode/sign/decode vectors (bot-api-nodejs-client test/mixin/safe.test.ts), byte for byte."""

from __future__ import annotations

import base64
import json

import pytest

from mixmaker.mixin import Keystore, curve, kernel
from mixmaker.mixin.amounts import format_units, to_units
from mixmaker.mixin.auth import request_sig, sign_authentication_token
from mixmaker.mixin.ids import hash_members, kernel_asset_id, unique_conversation_id, unique_object_id
from mixmaker.mixin.pin import decrypt_pin, encrypt_pin

TEST_KEYSTORE = {
    "app_id": "13c79909-fd32-401b-bfe5-ecf53816ddbf",
    "session_id": "26f481d3-9fd5-47ae-acf3-dff8c94f9e87",
    "server_public_key": "63e2f06c98ca6b74fe369df18fb673c19d95821e080891666c7f46266a06e2eb",
    "session_private_key": "8608c3972c7b61a0e9edb1c8bc051bd5d2c62818c9e338bceb7413306611c722",
}

JWT = (
    "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJ1aWQiOiIxM2M3OTkwOS1mZDMyLTQwMWItYmZlNS1lY2Y1MzgxNmRkYmYiLCJzaWQiOiIyNmY0ODFk"
    "My05ZmQ1LTQ3YWUtYWNmMy1kZmY4Yzk0ZjllODciLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwianRpIjoiMGI5ZDFiOGUtNWE4Zi00"
    "YTZlLTlkMGUtOGExZjBlN2I2YzVkIiwic2lnIjoiNWU2YjU4ZmZhMTBiM2JjNTE3MjRmZjBiYmQyYWZiOTFjNDc3MWVlMzQwZjVkNjg1MzQwZGZhNGM4"
    "NTRiYWZiYSIsInNjcCI6IkZVTEwifQ.94yDjaYDuUgy36G-rc_xeGiTAi1ujBHPPkP4ATgAfkLb6J5GjByNVp9yF8jQYXhFZ3YJsLe6LMKFR3jmvXHcCQ"
)

RAW1 = (
    "77770005b9f49cf777dc4d03bc54cd1367eebca319f8603ea1ce18910d09e2c540c630d80001c513ffcc684e9585c76bd76245aa7d2def3b9f147422"
    "b59ab91db7852c9d97dd000000000000000000010000000405f5e1000001a6c306c3137c2bf4a8bfc95ea5165f7777020916aa36ee6ec394beb9a1e6"
    "a164286d4f092015ea327ba12145edd40ddede1bdd80f777c249128d38176e352a130003fffe010000000000000009746573742d6d656d6f0000"
)
RAW2 = RAW1[:-4] + (
    "000100010000fde63b999d519394b3ba8a99a9f1d44bc91c2ee73d472d2085fa222925732889159042b126b4436766d6d3308ee541c50fc1b9b8b837"
    "01ac534c68e7f4d0f50c"
)
VIEWS = ["0164ba23d5aa1953132bc0bf5d12d0af7e66de2ba8773701ef135e015f24bb0b"]
PRIV = "7fb3893475a82c85e2b3c8a9a9232eddb36651ac32fa98ae83e6c2f33fb1be84dea64fa32b3b01f9a059142c0e9535a57b69f676790ae64f6d52f9a06d90f11e"

DECODE_RAW = (
    "77770005f3bed3e0f6738938c8988eb8853c5647baa263901deb217ee53586d5de831f3b0001b5ecd453883aebc2a0dfe6c3f005c06c59156b70c532"
    "c363c7dff6ca4329d0ed00000000000000000002000000022710000b3720de3095a80e5778c266471193a9404cbbf876f7e66c6c5f9126cb4624f2b0"
    "97bdc4ccdcaf213abe138aeaf7e65df0a207be975ebe30ab136b128676989a235d877764ed21f4b96d66f81e4ceb0896d81aee81f74065a08e80a0b0"
    "9d48ebadb10ce899bd793a9741cab5d7a3e4385fd920244847de1a7af86a40db7d584bbea5af14afffbc0cd3014c6f1370df394780966f440dca4acb"
    "dcf4102defe325972ebe24a114a331d5fff0d19ac4340801f7cd0d39c46ff71c801ae774a8d91f36051312e4daf0b6a32f4b286de370db381ccb7a30"
    "c8fb10a74fe0b88388b3ee8791b828cf0ee8ff9a5ab96cd6a4332a6c758339875026af7ba41670ea50e5930d746e35b89fc88259d46a45f5ab5b6a6a"
    "aed73d78a3711d633e23a017e922c6471ac457e96bee19665a179c820897aab4c4ed16b79da142dc6458b7ff66094a803c86daadbc99dbfc3d218fb8"
    "5fefdc8f0e9818057965819598a892b647a00f65d0daa2de9d547edd3a300a3c366e4cbdc3d38b841b84bba748e9d788e0f9f8e90003fffe02000000"
    "00000405f5b9f0000b6886794f8ad4b99fe21eb6b80342bdabb5789e124d860831acb7ba70968ebefd9492fbec7993349bdb64fa1e9df89913eac212"
    "1cd24894f609305af12ee89913b268eed77794fa0caf1391c7c2dc9eda9d94fda92d75b66f09d41133057e92e2fb645be1cd74429d65cc082aaaaa78"
    "03ba7192daf5a77361b35b346293da3eb24449ab5ec302fa2279ccb27b2f25269daff0dbd3d377d729dfe480ff63b0fee84b7392595e645d58f1a1f2"
    "8781bd05a781305263a81afca8e599f1e7c45458d5c6bf5b4c81bc4872de98a2099364f3013119f715c120ad3fb663abdd9e25fa60cce3eb4f9d6546"
    "b18fff2fd145860ed8819f7b75edb8e3a8542942e078541de3125ceb37b571249808e18f10fd53ed8abd6eb438ab4ec98f57766b0e3e74834e4f9121"
    "fab9e57e3ad4dd8eb73e017eaaf142d2a5d4beddafe8bc5198a90efe91e769a91c5af97d7972bd38a984f66b060dd5a24c8fc8d2ce9969fe689d2589"
    "16c295b730f477c2a605e9044da395575a0d9f395c890f1d70a40be812a04922710003fffe0200000000000000136d756c7469736967732d746573742d"
    "6d656d6f0000"
)


@pytest.fixture
def ks() -> Keystore:
    return Keystore.from_dict(TEST_KEYSTORE)


# --- §20.2 curve keys and the PIN key ------------------------------------------------------


def test_session_public_key(ks):
    assert ks.session_public_key.hex() == "7c3572dca37906ab5278907ed8a00430957866a26d89a8e08340083229fab025"
    assert base64.urlsafe_b64encode(ks.session_public_key).rstrip(b"=").decode() == "fDVy3KN5BqtSeJB-2KAEMJV4ZqJtiajgg0AIMin6sCU"


def test_curve25519_conversions_and_pin_key(ks):
    seed = ks.session_private_key.reveal()
    assert curve.curve25519_private(seed).hex() == "8808fa0b238ecf0e7e8f118ac442a3a6443934585bcb418e6a08a11e4ec34e6f"
    assert curve.curve25519_public(ks.server_public_key).hex() == "31ab337b325e2b41b358b6b1cbb2ff9733b037bc54a62ee3c108219690761a7b"
    assert curve.pin_key(seed, ks.server_public_key).hex() == "1cce2aada75ae713fb1b7b1e7acc6c74ed43bdc4b66e75bba32cadc85fe6cd06"


def test_pin_ciphertext_round_trips_under_the_pin_key(ks):
    key = bytes.fromhex("1cce2aada75ae713fb1b7b1e7acc6c74ed43bdc4b66e75bba32cadc85fe6cd06")
    ct = encrypt_pin(ks, b"123456", 42, now=1700000000, iv=bytes(16))
    assert decrypt_pin(key, ct) == (b"123456", 1700000000, 42)


# --- §20.3 sig and §20.4 JWT -----------------------------------------------------------------


@pytest.mark.parametrize(
    "method,uri,body,sig",
    [
        ("GET", "/me", b"", "5e6b58ffa10b3bc51724ff0bbd2afb91c4771ee340f5d685340dfa4c854bafba"),
        (
            "GET",
            "/safe/snapshots?limit=500&offset=2024-01-01T00:00:00.000000000Z&order=ASC",
            b"",
            "3e5114b9be148ed4dd87f484fd417bdb898f6c4601be5663aa8152c647b1c3ba",
        ),
        (
            "POST",
            "/safe/transactions",
            b'[{"request_id":"f0e1d2c3-b4a5-4968-8776-655443322110","raw":"7777"}]',
            "bf47dc087019b796a418cf353b24a15cf666e77d3e6f90671fe898d522c771d1",
        ),
    ],
)
def test_sig(method, uri, body, sig):
    assert request_sig(method, uri, body) == sig


def test_jwt_is_byte_exact(ks):
    token = sign_authentication_token(
        ks, "GET", "/me", b"", iat=1700000000, exp=1700003600, jti="0b9d1b8e-5a8f-4a6e-9d0e-8a1f0e7b6c5d"
    )
    assert token == JWT
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sig"] == "5e6b58ffa10b3bc51724ff0bbd2afb91c4771ee340f5d685340dfa4c854bafba"


def test_jwt_defaults_give_a_fresh_jti_each_time(ks):
    a = sign_authentication_token(ks, "GET", "/safe/me", b"")
    b = sign_authentication_token(ks, "GET", "/safe/me", b"")
    ja, jb = (json.loads(base64.urlsafe_b64decode(t.split(".")[1] + "==")) for t in (a, b))
    assert ja["jti"] != jb["jti"] and ja["exp"] > ja["iat"]
    with pytest.raises(ValueError, match="request target"):
        sign_authentication_token(ks, "GET", "https://api.mixin.one/me", b"")


# --- §20.5-20.7 hashes and ids -----------------------------------------------------------------


def test_hash_members():
    a, b = "965e5c6e-434c-3fa9-b780-c50f43cd955c", "d1e9ec7e-199d-4578-91a0-a69d9a7ba048"
    assert hash_members([a]) == "b9f49cf777dc4d03bc54cd1367eebca319f8603ea1ce18910d09e2c540c630d8"
    assert hash_members([a, b]) == hash_members([b, a]) == "6064ec68a229a7d2fe2be652d11477f21705a742e08b75564fd085650f1deaeb"
    # the three-member case of the Go SDK's TestHashMember
    three = ["0355e4c0-ba3a-4ba6-82c0-6311e332f57a", "506694b3-0c16-4bd2-8ea0-ba3de6840a5a", "834c17e1-1427-434a-a280-1b3cfee05111"]
    assert hash_members(three) == hash_members(three[::-1]) == "36972be0d8ef46deb3974334aa2242bfcdab044cbb99864ecc7f6ddbb9ee8ed9"
    with pytest.raises(ValueError):
        hash_members([])


def test_unique_ids():
    a, b = "965e5c6e-434c-3fa9-b780-c50f43cd955c", "d1e9ec7e-199d-4578-91a0-a69d9a7ba048"
    assert unique_conversation_id(a, b) == unique_conversation_id(b, a) == "60478c27-1052-3df5-b938-b96a8b907e76"
    assert unique_object_id("f0e1d2c3-b4a5-4968-8776-655443322110", "FEE") == "d0919f59-3398-3e9d-bcfc-5cec1aadc459"


def test_kernel_asset_id():
    assert kernel_asset_id("c94ac88f-4671-3976-b60a-09064f1811e8") == "a99c2e0e2b1da4d648755ef19bd95139acbbe6564cfb06dec7cd34931ca72cdc"
    assert kernel_asset_id("965e5c6e-434c-3fa9-b780-c50f43cd955c") == "b9f49cf777dc4d03bc54cd1367eebca319f8603ea1ce18910d09e2c540c630d8"


# --- §20.8 the official Safe transaction vectors ----------------------------------------------------


def _vector_tx() -> kernel.Transaction:
    return kernel.Transaction(
        asset=bytes.fromhex("b9f49cf777dc4d03bc54cd1367eebca319f8603ea1ce18910d09e2c540c630d8"),
        inputs=(kernel.Input(bytes.fromhex("c513ffcc684e9585c76bd76245aa7d2def3b9f147422b59ab91db7852c9d97dd"), 0),),
        outputs=(
            kernel.Output(
                kernel.OUTPUT_SCRIPT,
                to_units("1"),
                (bytes.fromhex("a6c306c3137c2bf4a8bfc95ea5165f7777020916aa36ee6ec394beb9a1e6a164"),),
                bytes.fromhex("286d4f092015ea327ba12145edd40ddede1bdd80f777c249128d38176e352a13"),
                kernel.threshold_script(1),
            ),
        ),
        extra=b"test-memo",
    )


def test_safe_transaction_encode_vector():
    assert kernel.encode(_vector_tx()).hex() == RAW1


def test_safe_transaction_sign_vector():
    signed = kernel.sign(_vector_tx(), [bytes.fromhex(v) for v in VIEWS], bytes.fromhex(PRIV)[:32])
    assert kernel.encode(signed).hex() == RAW2
    # and the signature verifies as plain Ed25519 under the input's one-time public key
    key = curve.scalar_add(bytes.fromhex(VIEWS[0]), curve.spend_scalar(bytes.fromhex(PRIV)[:32]))
    assert curve.verify(curve.public_from_scalar(key), signed.hash(), signed.signatures[0][0])
    assert not curve.verify(curve.public_from_scalar(key), bytes(32), signed.signatures[0][0])


def test_safe_transaction_decode_vector():
    tx = kernel.decode(bytes.fromhex(DECODE_RAW))
    assert tx.asset.hex() == "f3bed3e0f6738938c8988eb8853c5647baa263901deb217ee53586d5de831f3b"
    assert tx.extra == b"multisigs-test-memo"
    assert tx.inputs == (kernel.Input(bytes.fromhex("b5ecd453883aebc2a0dfe6c3f005c06c59156b70c532c363c7dff6ca4329d0ed"), 0),)
    assert [format_units(o.amount) for o in tx.outputs] == ["0.0001", "0.9999"]
    assert [o.script.hex() for o in tx.outputs] == ["fffe02", "fffe02"]
    assert tx.outputs[0].mask.hex() == "d0daa2de9d547edd3a300a3c366e4cbdc3d38b841b84bba748e9d788e0f9f8e9"
    assert len(tx.outputs[0].keys) == 11 and tx.outputs[0].keys[0].hex().startswith("3720de30")
    assert tx.outputs[1].keys[-1].hex() == "e769a91c5af97d7972bd38a984f66b060dd5a24c8fc8d2ce9969fe689d258916"
    assert kernel.encode(tx).hex() == DECODE_RAW  # and back, byte for byte


def test_decoding_refuses_damaged_transactions():
    raw = bytes.fromhex(RAW2)
    for bad, msg in [(raw[:-1], "truncated"), (raw + b"\x00", "trailing"), (b"\x77\x78" + raw[2:], "magic"),
                     (raw[:2] + b"\x00\x04" + raw[4:], "version")]:
        with pytest.raises(kernel.KernelDecodeError, match=msg):
            kernel.decode(bad)


def test_withdrawal_output_round_trips():
    tx = kernel.Transaction(
        asset=bytes(32),
        inputs=(kernel.Input(bytes(32), 1),),
        outputs=(kernel.Output(kernel.OUTPUT_WITHDRAWAL_SUBMIT, 12345, withdrawal=kernel.Withdrawal("0xabc", "memo")),),
        references=(bytes(range(32)),),
    )
    assert kernel.decode(kernel.encode(tx)) == tx


def test_safe_ghost_key_for_a_mainnet_address_vector():
    """safe.test.ts 'Test for safe ghost key for mainnet address': a key computed locally for a XIN address."""
    from mixmaker.mixin.address import AddressError, format_kernel_address, parse_kernel_address

    addr = ("XINJkpCdwVk3qFqmS3AAAoTmC5Gm2fR3iRF7Rtt7hayuaLXNrtztS3LGPSxTmq5KQh3KJ2qYXYE5a9w8BWXhZAdsJKXqcvUr")
    seed = bytes.fromhex(
        "518fad2b5eb4ddbd64d2bd5537a73266451ac0eeaff044d6d4e1adfe09da9373ce6ad9b1bc2b55e371c452f84472d741c927989dc3ea91773964492618c02ece"
    )
    spend, view = parse_kernel_address(addr)
    assert format_kernel_address(spend, view) == addr
    r = curve.scalar_from_bytes(seed)
    assert curve.public_from_scalar(r).hex() == "f2459f77513526c156a5cf2ec831e849b75514f0614e2bd7acdde70afc224f40"
    assert curve.ghost_public_key(r, view, spend, 255).hex() == "40567a0c5696cd3c7160f910248e9bae36cee90d625bba4dbf7ed03d272b2e61"
    for bad in (addr[:-1] + ("1" if addr[-1] != "1" else "2"), "MIX" + addr[3:], addr + "0"):
        with pytest.raises(AddressError):
            parse_kernel_address(bad)


def test_ghost_keys_agree_between_sender_and_receiver():
    # The sender knows r and the receiver's public keys; the receiver knows its view key and the mask.
    r = curve.scalar_from_bytes(bytes(range(64)))
    view, spend_seed = curve.scalar_from_bytes(bytes(range(1, 65))), bytes(range(2, 34))
    key = curve.ghost_public_key(r, curve.public_from_scalar(view), curve.public_from_seed(spend_seed), 3)
    x = curve.ghost_view_scalar(view, curve.public_from_scalar(r), 3)
    assert curve.public_from_scalar(curve.scalar_add(x, curve.spend_scalar(spend_seed))) == key
    assert curve.ghost_view_scalar(view, curve.public_from_scalar(r), 4) != x
