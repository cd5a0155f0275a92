"""Encryption of stored secrets (tenant upstream credentials) with AES-256-GCM.

A token is `v1.<key id>.<base64url(nonce | ciphertext+tag)>`. The key id is the first
8 hex digits of SHA-256(key), so a token names the key that sealed it and keys listed
in TOKEN_ENCRYPTION_KEYS_OLD still open old tokens after a rotation. The version and
key id are bound as associated data: editing them breaks the tag like any other tamper.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from tenants.exceptions import DecryptionError

VERSION = "v1"
NONCE_BYTES = 12


def key_id(key: bytes) -> str:
    """Return the public identifier of a 32-byte key."""
    return hashlib.sha256(key).hexdigest()[:8]


def _current_key() -> bytes:
    return settings.TENANTS_TOKEN_ENCRYPTION_KEY


def _keys_by_id() -> dict[str, bytes]:
    keys = [_current_key(), *settings.TENANTS_TOKEN_ENCRYPTION_KEYS_OLD]
    return {key_id(key): key for key in keys if key}


def encrypt(plaintext: str) -> str:
    """Return a token sealing `plaintext` with the current key."""
    key = _current_key()
    kid = key_id(key)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), f"{VERSION}.{kid}".encode())
    return f"{VERSION}.{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def _parse(token: str) -> tuple[str, str, bytes]:
    try:
        version, kid, body = token.split(".", 2)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, AttributeError):
        raise DecryptionError("Not an encrypted token (expected v1.<key id>.<data>).") from None
    if version != VERSION or len(raw) <= NONCE_BYTES + 16:
        raise DecryptionError("Not an encrypted token (expected v1.<key id>.<data>).")
    return version, kid, raw


def decrypt(token: str) -> str:
    """Return the plaintext of a token sealed by the current key or an old one."""
    version, kid, raw = _parse(token)
    key = _keys_by_id().get(kid)
    if key is None:
        raise DecryptionError(
            f"Token sealed with key id {kid}, which is neither TOKEN_ENCRYPTION_KEY nor in TOKEN_ENCRYPTION_KEYS_OLD."
        )
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{version}.{kid}".encode())
    except InvalidTag:
        raise DecryptionError("The token failed authentication: it was altered or sealed with another key.") from None
    return plain.decode()


def needs_rotation(token: str) -> bool:
    """Return True if the token was sealed with a key other than the current one."""
    _, kid, _ = _parse(token)
    return kid != key_id(_current_key())


def current_key_id() -> str:
    """Return the key id new tokens are sealed with."""
    return key_id(_current_key())
