"""Envelope encryption with AES-256-GCM.

Each account's private key is sealed under its own random data key; the data key is
sealed ("wrapped") under a master key. The associated data binds each ciphertext to its
account (and the wrap to the master key version), so ciphertexts moved between rows or a
``key_version`` changed in SQL fail to decrypt instead of yielding another account's key.
Rotation only re-wraps the 48-byte data keys; private-key ciphertexts never change.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12  # random 96-bit nonces: every key here seals at most a few messages


class InvalidCiphertext(Exception):
    """Authentication failed; callers turn it into a ``DecryptionError`` with context."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """``(nonce, ciphertext)`` of ``plaintext`` under ``key``, bound to ``aad``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise InvalidCiphertext from None


def private_key_aad(address: str) -> bytes:
    return b"konbit-vault/private-key/v1|" + address.encode()


def data_key_aad(address: str, key_version: int) -> bytes:
    return b"konbit-vault/data-key/v1|" + address.encode() + b"|" + str(key_version).encode()
