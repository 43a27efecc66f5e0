"""Custodial keys: the backend holds farmers' and cooperatives' secp256k1 keys and signs.

Private keys are sealed with AES-256-GCM under a per-account data key, wrapped by a master
key (see ``crypto`` and ``keyring``). Use ``Vault`` (``service``); ``konbit vault`` is the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from konbit.vault.errors import (
    DecryptionError,
    KeyFilePermissionError,
    MasterKeyError,
    UnknownAccountError,
    VaultError,
)

if TYPE_CHECKING:
    from konbit.vault.service import AccountInfo, RotationReport, Vault

__all__ = [
    "AccountInfo",
    "DecryptionError",
    "KeyFilePermissionError",
    "MasterKeyError",
    "RotationReport",
    "UnknownAccountError",
    "Vault",
    "VaultError",
]


def __getattr__(name: str) -> object:
    # Lazy: eth-account takes ~0.5 s to import, and the Alembic env and every `konbit`
    # command import this package (for the table or the CLI) without signing anything.
    if name in ("AccountInfo", "RotationReport", "Vault"):
        from konbit.vault import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
