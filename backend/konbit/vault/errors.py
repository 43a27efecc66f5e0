"""Vault errors. Messages name addresses, key versions and file paths, never key bytes."""

from __future__ import annotations


class VaultError(Exception):
    """Base of every error the vault raises on purpose."""


class UnknownAccountError(VaultError):
    """No custodial account has this address."""


class MasterKeyError(VaultError):
    """The master key (file or ``KONBIT_VAULT_MASTER_KEY``) is missing, malformed or unusable."""


class KeyFilePermissionError(MasterKeyError):
    """The master key file is accessible to users other than its owner."""


class DecryptionError(VaultError):
    """A row does not decrypt: wrong master key, or the row was altered or swapped."""
