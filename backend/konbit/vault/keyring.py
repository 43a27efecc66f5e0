"""The master keyring: the master key versions that unwrap data keys, and the current one.

Two sources, chosen by settings:

* a file (default ``<data_dir>/vault/master.key``), JSON::

      {"format": "konbit-vault-keyring", "current": 2,
       "keys": {"1": "<base64 of 32 bytes>", "2": "<base64 of 32 bytes>"}}

  created on first use with mode 0600 in a 0700 folder and always replaced atomically
  (temp file, fsync, rename, fsync folder), so a crash leaves the old or the new keyring,
  never a torn one. A file that group or others may access is refused.
* ``KONBIT_VAULT_MASTER_KEY``: ``<base64>`` (that key is version 1) or a comma-separated
  list ``<version>:<base64>`` whose first entry is current, e.g. ``3:<new>,2:<old>``.
  Konbit cannot rewrite the environment, so with this source the operator adds and drops
  versions (see ``Vault.rotate``).

Several versions are held at once only during a rotation: rows wrapped under the old or
the new version both decrypt until every row has moved. Backend processes sharing one
database must share one keyring (the same file, or the same variable).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from konbit.vault.crypto import KEY_BYTES, new_key
from konbit.vault.errors import KeyFilePermissionError, MasterKeyError

FORMAT = "konbit-vault-keyring"
ENV_VAR = "KONBIT_VAULT_MASTER_KEY"


@dataclass(frozen=True, repr=False)
class Keyring:
    current: int
    keys: Mapping[int, bytes] = field(repr=False)
    source: str  # for messages: "file <path>" or the variable's name
    path: Path | None = None  # the file to rewrite on rotation; None for the environment

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise MasterKeyError(f"master keyring ({self.source}) lacks its current version")

    def __repr__(self) -> str:
        return f"Keyring(current={self.current}, versions={self.versions}, source={self.source!r})"

    @property
    def versions(self) -> list[int]:
        return sorted(self.keys)

    def key(self, version: int) -> bytes:
        try:
            return self.keys[version]
        except KeyError:
            raise MasterKeyError(
                f"master key version {version} is not in the keyring ({self.source}), which "
                f"holds versions {self.versions}; restore it from a backup"
            ) from None

    def with_new_current(self) -> Keyring:
        """A new random key, one version above any held, made current; old ones kept."""
        version = max(self.keys) + 1
        return Keyring(version, {**self.keys, version: new_key()}, self.source, self.path)

    def only_current(self) -> Keyring:
        return Keyring(
            self.current, {self.current: self.keys[self.current]}, self.source, self.path
        )

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "current": self.current,
            "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(self.keys.items())},
        }
        return (json.dumps(doc, indent=2) + "\n").encode()


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"{where}: a master key must be {KEY_BYTES} bytes in base64")
    return key


def _version(text: str, where: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise MasterKeyError(f"{where}: key versions are positive integers")
    return int(text)


def from_env(value: str, name: str = ENV_VAR) -> Keyring:
    """Parse ``<base64>`` or ``<version>:<base64>[,<version>:<base64>...]``."""
    keys: dict[int, bytes] = {}
    current = 0
    for entry in (part.strip() for part in value.split(",")):
        version_text, sep, key_text = entry.rpartition(":")
        version = _version(version_text, name) if sep else 1
        if version in keys:
            raise MasterKeyError(f"{name}: version {version} is given twice")
        keys[version] = _decode_key(key_text, f"{name} version {version}")
        current = current or version
    return Keyring(current, keys, name)


def read_file(path: Path) -> Keyring:
    """Load the keyring file, refusing one that others may read or change."""
    where = f"master key file {path}"
    try:
        fd = os.open(path, os.O_RDONLY)  # symlinks allowed: Kubernetes mounts secrets so
    except FileNotFoundError:
        raise MasterKeyError(f"{where} does not exist") from None
    except OSError as exc:
        raise MasterKeyError(f"{where} cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise MasterKeyError(f"{where} is not a regular file")
        if os.name == "posix" and st.st_mode & 0o077:
            raise KeyFilePermissionError(
                f"{where} is accessible to group or others (mode {stat.S_IMODE(st.st_mode):04o});"
                f" refusing to use it. Run `chmod 600 {path}` (and check who may have read it)"
            )
        raw = handle.read()
    try:
        doc: Any = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError
        keys = {
            _version(v, where): _decode_key(k, f"{where} version {v}")
            for v, k in doc["keys"].items()
        }
        current = int(doc["current"])
    except MasterKeyError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MasterKeyError(f"{where} is not a Konbit keyring (JSON, format {FORMAT!r})") from None
    return Keyring(current, keys, f"file {path}", path)


def _write_temp(keyring: Keyring, folder: Path) -> Path:
    temp = folder / f".{FORMAT}.{os.getpid()}.{new_key().hex()[:8]}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, keyring.to_json())
        os.fsync(fd)
    finally:
        os.close(fd)
    return temp


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_file(path: Path) -> Keyring:
    """Create a keyring file with one fresh key (version 1), or load the one a racer made.

    The file appears complete or not at all: it is written aside and hard-linked into
    place, which, unlike a rename, fails rather than replace a file created meanwhile.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        folder.chmod(0o700)
    keyring = Keyring(1, {1: new_key()}, f"file {path}", path)
    temp = _write_temp(keyring, folder)
    try:
        os.link(temp, path)
    except FileExistsError:
        return read_file(path)
    finally:
        temp.unlink()
    _fsync_dir(folder)
    return keyring


def replace_file(keyring: Keyring) -> None:
    """Atomically replace the keyring file with ``keyring``."""
    if keyring.path is None:
        raise MasterKeyError(f"the keyring from {keyring.source} cannot be rewritten by Konbit")
    temp: Path | None = None
    try:
        temp = _write_temp(keyring, keyring.path.parent)
        os.replace(temp, keyring.path)
        _fsync_dir(keyring.path.parent)
    except OSError as exc:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink()
        raise MasterKeyError(f"cannot rewrite master key file {keyring.path}: {exc}") from None


@contextlib.contextmanager
def rotation_lock(keyring: Keyring) -> Iterator[None]:
    """One rotation at a time per keyring file: two would each add a different new key."""
    if keyring.path is None:
        yield  # rows are re-wrapped under row locks; the environment is not written
        return
    lock = keyring.path.with_name(keyring.path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MasterKeyError(f"another rotation is running (it holds {lock})") from None
        yield
    finally:
        os.close(fd)
