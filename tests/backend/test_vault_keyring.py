"""The master keyring file and environment variable: creation, permissions, format."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from konbit.db.migrate import upgrade
from konbit.settings import Settings
from konbit.vault import KeyFilePermissionError, MasterKeyError, Vault, VaultError
from konbit.vault import keyring as keyring_module


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_created_0600_in_a_0700_folder_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "data" / "vault" / "master.key"
    previous = os.umask(0)
    try:
        ring = keyring_module.create_file(path)
    finally:
        os.umask(previous)
    assert (mode(path), mode(path.parent)) == (0o600, 0o700)
    doc = json.loads(path.read_text())
    assert doc["format"] == "konbit-vault-keyring" and doc["current"] == 1
    assert base64.b64decode(doc["keys"]["1"]) == ring.key(1)
    assert os.listdir(path.parent) == ["master.key"]  # no temp file left behind
    # A second creator (another process racing) gets the first one's key.
    assert keyring_module.create_file(path).key(1) == ring.key(1)


def test_rewrite_is_atomic_and_keeps_0600(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    ring = keyring_module.create_file(path).with_new_current()
    keyring_module.replace_file(ring)
    reread = keyring_module.read_file(path)
    assert (reread.current, reread.versions, mode(path)) == (2, [1, 2], 0o600)
    assert reread.key(1) == ring.key(1) and reread.key(2) == ring.key(2)
    assert os.listdir(tmp_path) == ["master.key"]


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660])
def test_file_open_to_others_is_refused(tmp_path: Path, bad_mode: int) -> None:
    path = tmp_path / "master.key"
    keyring_module.create_file(path)
    path.chmod(bad_mode)
    with pytest.raises(KeyFilePermissionError) as err:
        keyring_module.read_file(path)
    message = str(err.value)
    assert f"chmod 600 {path}" in message and f"{bad_mode:04o}" in message
    path.chmod(0o400)  # read-only for the owner is fine
    assert keyring_module.read_file(path).current == 1


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        '{"current": 1, "keys": {"1": "AAAA"}}',
        '{"format": "konbit-vault-keyring", "current": 2, "keys": {"1": "%s"}}',
        '{"format": "konbit-vault-keyring", "current": 1, "keys": {"1": "c2hvcnQ="}}',
    ],
)
def test_malformed_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "master.key"
    path.write_text(content.replace("%s", base64.b64encode(b"k" * 32).decode()))
    path.chmod(0o600)
    with pytest.raises(MasterKeyError, match=str(path)):
        keyring_module.read_file(path)


def test_env_syntax() -> None:
    one, two = b"\x11" * 32, b"\x22" * 32
    bare = keyring_module.from_env(base64.b64encode(one).decode())
    assert (bare.current, bare.versions, bare.path) == (1, [1], None)
    listed = keyring_module.from_env(
        f"3:{base64.b64encode(two).decode()},1:{base64.b64encode(one).decode()}"
    )
    assert (listed.current, listed.versions) == (3, [1, 3]) and listed.key(1) == one
    with pytest.raises(MasterKeyError, match="twice"):
        keyring_module.from_env(f"1:{base64.b64encode(one).decode()},1:AAAA")
    assert "\\x11" not in repr(bare) and one.hex() not in repr(bare)


def test_vault_settings_pick_the_source(engine: Engine, tmp_path: Path) -> None:
    upgrade(engine)
    settings = Settings.load(env_file=None, environ={}, data_dir=tmp_path / "data")
    path = settings.effective_vault_master_key_file
    vault = Vault(engine, settings)
    assert mode(path) == 0o600 and "master.key" in repr(vault)
    address = vault.create_account("farmer")

    path.chmod(0o644)
    with pytest.raises(KeyFilePermissionError, match="chmod 600"):
        Vault(engine, settings)
    path.chmod(0o600)

    # The file is lost while the database holds accounts: no silent new key.
    moved = path.rename(tmp_path / "backup.key")
    with pytest.raises(MasterKeyError, match="restore the file from a backup"):
        Vault(engine, settings)
    assert not path.exists()

    custom = Settings.load(
        env_file=None, environ={"KONBIT_VAULT_MASTER_KEY_FILE": str(moved)}, data_dir=tmp_path
    )
    assert Vault(engine, custom).account(address).key_version == 1


def test_vault_needs_the_migrated_table(engine: Engine, tmp_path: Path) -> None:
    settings = Settings.load(env_file=None, environ={}, data_dir=tmp_path)
    with pytest.raises(VaultError, match="konbit db upgrade"):
        Vault(engine, settings)


def test_symlinked_file_is_followed(tmp_path: Path) -> None:
    """As Kubernetes mounts secrets; the target's mode is what counts."""
    ring = keyring_module.create_file(tmp_path / "real" / "master.key")
    (tmp_path / "link.key").symlink_to(tmp_path / "real" / "master.key")
    assert keyring_module.read_file(tmp_path / "link.key").key(1) == ring.key(1)


def test_one_rotation_at_a_time(engine: Engine, tmp_path: Path) -> None:
    upgrade(engine)
    vault = Vault(engine, Settings.load(env_file=None, environ={}, data_dir=tmp_path))
    vault.create_account("farmer")
    ring = keyring_module.read_file(tmp_path / "vault" / "master.key")
    with keyring_module.rotation_lock(ring), pytest.raises(MasterKeyError, match="another"):
        vault.rotate()
    assert vault.key_version == 1
    assert vault.rotate().to_version == 2
