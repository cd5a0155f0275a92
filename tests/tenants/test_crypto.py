"""Upstream credentials are sealed with AES-256-GCM; old keys still open old tokens; tampering is caught."""

import base64

import pytest

from tenants import crypto
from tenants.exceptions import DecryptionError

KEY_A = bytes.fromhex("11" * 32)
KEY_B = bytes.fromhex("22" * 32)


@pytest.fixture
def key_a(settings):
    settings.TENANTS_TOKEN_ENCRYPTION_KEY = KEY_A
    settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = []
    return settings


def test_round_trip_and_token_names_its_key(key_a):
    token = crypto.encrypt("s3cret-ünïcode")
    assert token.startswith(f"v1.{crypto.key_id(KEY_A)}.")
    assert "s3cret" not in token
    assert crypto.decrypt(token) == "s3cret-ünïcode"
    assert crypto.encrypt("same") != crypto.encrypt("same")  # fresh nonce every time
    assert not crypto.needs_rotation(token)


def test_old_key_still_decrypts_after_rotation(key_a):
    token = crypto.encrypt("before rotation")
    key_a.TENANTS_TOKEN_ENCRYPTION_KEY = KEY_B
    key_a.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = [KEY_A]
    assert crypto.decrypt(token) == "before rotation"
    assert crypto.needs_rotation(token)
    assert not crypto.needs_rotation(crypto.encrypt("after"))


def test_unknown_key_is_refused_with_its_id(key_a):
    token = crypto.encrypt("x")
    key_a.TENANTS_TOKEN_ENCRYPTION_KEY = KEY_B
    with pytest.raises(DecryptionError, match=crypto.key_id(KEY_A)):
        crypto.decrypt(token)


@pytest.mark.parametrize("position", [0, 12, -1], ids=["nonce", "ciphertext", "tag"])
def test_tampered_ciphertext_is_detected(key_a, position):
    # Flip a bit of the decoded bytes: changing a base64 character can touch only padding bits.
    version, kid, body = crypto.encrypt("payload").split(".", 2)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(DecryptionError):
        crypto.decrypt(f"{version}.{kid}.{tampered}")


def test_swapped_key_id_is_detected(key_a):
    key_a.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD = [KEY_B]
    version, _, body = crypto.encrypt("payload").split(".", 2)
    with pytest.raises(DecryptionError):
        crypto.decrypt(f"{version}.{crypto.key_id(KEY_B)}.{body}")


@pytest.mark.parametrize("garbage", ["", "plain", "v1.abc", "v2.deadbeef.AAAA", "v1.deadbeef.!!!"])
def test_garbage_is_a_clear_error(key_a, garbage):
    with pytest.raises(DecryptionError, match=r"v1|key id"):
        crypto.decrypt(garbage)
