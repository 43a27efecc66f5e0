"""The custodial vault: creates accounts, signs for them, rotates the master key, exports.

A signature costs one indexed SELECT, two AES-GCM decryptions (microseconds) and the
ECDSA signature itself; no KDF runs except scrypt on export. So unwrapped data keys are
not cached: a cache would save microseconds and keep key material in memory for nothing.
Only the master keyring stays in memory, for the vault's lifetime.

Key hygiene is best effort: Python cannot wipe immutable ``bytes`` (and eth-keys and
coincurve keep their own copies), so decrypted keys are held in few, local references
and dropped as soon as the signature is made. Errors and logs name addresses and master
key versions, never key bytes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eth_account import Account
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from sqlalchemy import func, inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.db.engine import session_scope
from konbit.settings import Settings
from konbit.vault import keyring
from konbit.vault.crypto import (
    InvalidCiphertext,
    data_key_aad,
    new_key,
    private_key_aad,
    seal,
    unseal,
)
from konbit.vault.errors import DecryptionError, MasterKeyError, UnknownAccountError, VaultError
from konbit.vault.keyring import Keyring
from konbit.vault.models import CustodialAccount

log = logging.getLogger(__name__)

KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MIN_PASSPHRASE = 8

#: Called after each rotation batch with (accounts re-wrapped so far, accounts to re-wrap).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class AccountInfo:
    """What may be shown about a custodial account: never its key."""

    address: str
    kind: str
    label: str | None
    key_version: int
    created_at: datetime


@dataclass(frozen=True)
class SealedAccount:
    """A new custodial account's sealed row, to insert in the caller's transaction."""

    address: str
    version: int
    row: CustodialAccount = field(repr=False)


@dataclass(frozen=True)
class RotationReport:
    to_version: int
    rewrapped: int
    resumed: bool  # finished a rotation that an earlier run left half done
    dropped_versions: list[int]  # removed from the keyring file
    remaining_versions: list[int]  # still held: with the environment, the operator drops them


class Vault:
    """Custodial secp256k1 keys, sealed in ``custodial_account``; one per process is enough.

    Thread-safe: every call uses its own session, and the keyring is replaced, never mutated.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        if not inspect(engine).has_table(CustodialAccount.__tablename__):
            raise VaultError(
                f"the database has no {CustodialAccount.__tablename__} table: "
                "run `konbit db upgrade`"
            )
        self._keyring = self._load_keyring()
        self._seen_keys: dict[int, bytes] = dict(self._keyring.keys)

    def __repr__(self) -> str:
        return f"Vault({self._keyring!r})"

    @property
    def key_version(self) -> int:
        """The master key version that wraps new accounts' data keys."""
        return self._keyring.current

    # -- accounts -------------------------------------------------------------------------

    def create_account(self, kind: str, label: str | None = None) -> str:
        """Generate a key for a new custodial account; returns its checksummed address."""
        with session_scope(self._engine) as session:
            address, version = self.add_account(session, kind, label)
        self.account_committed(address, version)
        return address

    def add_account(self, session: Session, kind: str, label: str | None = None) -> tuple[str, int]:
        """Add a new account's sealed key to ``session``; the caller commits (or rolls back).

        Returns the address and the master key version that wraps it; pass both to
        :meth:`account_committed` once the caller's transaction has committed.
        """
        sealed = self.seal_account(kind, label)
        session.add(sealed.row)
        return sealed.address, sealed.version

    def seal_account(self, kind: str, label: str | None = None) -> SealedAccount:
        """A new key, sealed and ready to insert, not yet stored anywhere.

        A service seals the account first (its address goes into the simulated calls), then
        adds ``row`` in the same transaction as the rest of its write, so that the account
        exists if and only if the write does.
        """
        if not KIND.fullmatch(kind):
            raise VaultError(f"kind must be a lowercase word (farmer, cooperative, ...): {kind!r}")
        if label is not None and len(label) > 64:
            raise VaultError("label is limited to 64 characters (and holds no personal data)")
        ring = self._refresh()
        account = Account.create()
        address: str = account.address
        data_key = new_key()
        key_nonce, key_ciphertext = seal(data_key, bytes(account.key), private_key_aad(address))
        del account
        data_key_nonce, wrapped = seal(
            ring.key(ring.current), data_key, data_key_aad(address, ring.current)
        )
        del data_key
        row = CustodialAccount(
            address=address,
            kind=kind,
            label=label,
            key_version=ring.current,
            key_nonce=key_nonce,
            key_ciphertext=key_ciphertext,
            data_key_nonce=data_key_nonce,
            wrapped_data_key=wrapped,
        )
        log.info("sealed a new custodial account %s (%s)", address, kind)
        return SealedAccount(address=address, version=ring.current, row=row)

    def account_committed(self, address: str, version: int) -> None:
        """After the commit of :meth:`add_account`: keep up with a concurrent rotation.

        A rotation in another process may have begun before the row was written and
        finished without seeing it; it would then drop ``version`` from the file. Move the
        row while this process still holds that key.
        """
        latest = self._refresh()
        if latest.current != version:
            merged = Keyring(latest.current, {**self._seen_keys, **latest.keys}, latest.source)
            self._rewrap_batch(merged, 1, address=address)

    def account(self, address: str) -> AccountInfo:
        with Session(self._engine) as session:
            return _info(self._row(session, _checksum(address)))

    def accounts(self) -> list[AccountInfo]:
        with Session(self._engine) as session:
            rows = session.exec(select(CustodialAccount).order_by(col(CustodialAccount.id)))
            return [_info(row) for row in rows]

    # -- signing --------------------------------------------------------------------------

    @contextmanager
    def signer(self, address: str) -> Iterator[LocalAccount]:
        """A ``LocalAccount`` for ``address``, to use inside the ``with`` block and not keep."""
        account = self._local_account(address)
        try:
            yield account
        finally:
            del account

    def sign_transaction(self, address: str, tx: Mapping[str, Any]) -> SignedTransaction:
        """Sign a transaction dict (as for ``eth_account``) with the account's key."""
        with self.signer(address) as account:
            return account.sign_transaction(dict(tx))

    def sign_typed_data(self, address: str, full_message: Mapping[str, Any]) -> SignedMessage:
        """Sign EIP-712 typed data (``types``, ``primaryType``, ``domain``, ``message``)."""
        with self.signer(address) as account:
            return account.sign_typed_data(full_message=dict(full_message))

    def export_keystore(self, address: str, passphrase: str) -> dict[str, Any]:
        """An Ethereum keystore v3 (scrypt) of the key, for a user leaving custody."""
        if len(passphrase) < MIN_PASSPHRASE:
            raise VaultError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
        keystore = Account.encrypt(self._local_account(address).key, passphrase)
        log.warning("exported the key of custodial account %s as a keystore", _checksum(address))
        return keystore

    # -- rotation -------------------------------------------------------------------------

    def rotate(self, *, batch_size: int = 500, progress: Progress | None = None) -> RotationReport:
        """Re-wrap every data key under a new master key version, crash-safely.

        1. With a keyring file: add a new random key as current (atomic file replace), so
           rows under the old and the new version both decrypt from here on.
        2. Re-wrap rows still under another version, ``batch_size`` per transaction.
        3. Once none is left, drop the other versions from the file.

        A crash anywhere leaves every row decryptable; running ``rotate`` again resumes at
        step 2 while rows remain under older versions. With ``KONBIT_VAULT_MASTER_KEY``
        Konbit cannot add the key: the operator sets ``<new>:<key>,<old>:<key>`` and this
        performs step 2 only, then the operator drops the old entry.
        """
        with keyring.rotation_lock(self._keyring):
            return self._rotate(batch_size, progress)

    def _rotate(self, batch_size: int, progress: Progress | None) -> RotationReport:
        ring = self._refresh()
        pending = self._count(besides=ring.current)
        resumed = pending > 0
        if not resumed:
            if ring.path is None:
                raise MasterKeyError(_env_rotation_help(ring))
            ring = ring.with_new_current()
            keyring.replace_file(ring)
            self._keyring = ring
            pending = self._count(besides=ring.current)
            log.info("master key version %d added; re-wrapping %d accounts", ring.current, pending)
        else:
            log.info("resuming: %d accounts to re-wrap under version %d", pending, ring.current)
        done = 0
        while rewrapped := self._rewrap_batch(ring, batch_size):
            done += rewrapped
            log.debug("re-wrapped %d of %d accounts", done, max(done, pending))
            if progress is not None:
                progress(done, max(done, pending))
        old = [v for v in ring.versions if v != ring.current]
        if ring.path is not None and old:
            ring = ring.only_current()
            keyring.replace_file(ring)
            self._keyring = ring
            log.info("dropped master key versions %s from %s", old, ring.source)
        return RotationReport(
            to_version=ring.current,
            rewrapped=done,
            resumed=resumed,
            dropped_versions=old if ring.path is not None else [],
            remaining_versions=ring.versions,
        )

    def _rewrap_batch(self, ring: Keyring, limit: int, *, address: str | None = None) -> int:
        """Move up to ``limit`` rows not under ``ring.current`` to it, in one transaction."""
        query = (
            select(CustodialAccount)
            .where(CustodialAccount.key_version != ring.current)
            .order_by(col(CustodialAccount.id))
            .limit(limit)
            .with_for_update()  # PostgreSQL: a concurrent rotation skips rows moved here
        )
        if address is not None:
            query = query.where(CustodialAccount.address == address)
        with session_scope(self._engine) as session:
            rows = session.exec(query).all()
            for row in rows:
                nonce, wrapped = seal(
                    ring.key(ring.current),
                    _unwrap(row, ring),
                    data_key_aad(row.address, ring.current),
                )
                row.data_key_nonce, row.wrapped_data_key = nonce, wrapped
                row.key_version = ring.current
                session.add(row)
            return len(rows)

    # -- internals ------------------------------------------------------------------------

    def _load_keyring(self) -> Keyring:
        secret = self._settings.vault_master_key
        if secret is not None:
            return keyring.from_env(secret.get_secret_value())
        path = self._settings.effective_vault_master_key_file
        if path.is_symlink() or path.exists():
            return keyring.read_file(path)
        held = self._count()
        if held:
            raise MasterKeyError(
                f"master key file {path} is missing but the database holds {held} custodial "
                "accounts sealed under it: restore the file from a backup (a new key would "
                "not open them), or point KONBIT_VAULT_MASTER_KEY_FILE at it"
            )
        ring = keyring.create_file(path)
        log.info("master key file %s created (mode 0600)", path)
        return ring

    def _refresh(self) -> Keyring:
        """Re-read the keyring file: a rotation in another process may have changed it."""
        if self._keyring.path is not None:
            self._keyring = keyring.read_file(self._keyring.path)
        # Keys this process has held: a row wrapped under one outlives a concurrent rotation.
        self._seen_keys.update(self._keyring.keys)
        return self._keyring

    def _count(self, *, besides: int | None = None) -> int:
        """Accounts, or those wrapped under a master key version other than ``besides``."""
        query = select(func.count()).select_from(CustodialAccount)
        if besides is not None:
            query = query.where(CustodialAccount.key_version != besides)
        with Session(self._engine) as session:
            return session.exec(query).one()

    def _row(self, session: Session, address: str) -> CustodialAccount:
        row = session.exec(
            select(CustodialAccount).where(CustodialAccount.address == address)
        ).first()
        if row is None:
            raise UnknownAccountError(f"no custodial account has address {address}")
        return row

    def _local_account(self, address: str) -> LocalAccount:
        address = _checksum(address)
        with Session(self._engine) as session:
            row = self._row(session, address)
        ring = self._keyring
        if row.key_version not in ring.keys:
            ring = self._refresh()
        try:
            account: LocalAccount = Account.from_key(
                unseal(
                    _unwrap(row, ring),
                    row.key_nonce,
                    row.key_ciphertext,
                    private_key_aad(address),
                )
            )
        except InvalidCiphertext:
            raise DecryptionError(
                f"the private key of {address} does not decrypt with its data key: "
                "the row was altered or its ciphertexts swapped"
            ) from None
        if account.address != address:
            raise DecryptionError(f"the key stored for {address} belongs to another address")
        return account


def _unwrap(row: CustodialAccount, ring: Keyring) -> bytes:
    try:
        return unseal(
            ring.key(row.key_version),
            row.data_key_nonce,
            row.wrapped_data_key,
            data_key_aad(row.address, row.key_version),
        )
    except InvalidCiphertext:
        raise DecryptionError(
            f"the data key of {row.address} does not decrypt under master key version "
            f"{row.key_version} ({ring.source}): wrong master key, or the row was altered"
        ) from None


def _checksum(address: str) -> str:
    if not is_address(address):
        raise VaultError(f"not an Ethereum address: {address!r}")
    return to_checksum_address(address)


def _info(row: CustodialAccount) -> AccountInfo:
    return AccountInfo(row.address, row.kind, row.label, row.key_version, row.created_at)


def _env_rotation_help(ring: Keyring) -> str:
    new, old, var = max(ring.versions) + 1, ring.current, ring.source
    return (
        f"every account is already wrapped under master key version {old}, which comes from "
        f"{var}; Konbit cannot change the environment. To rotate: make a key "
        "(`openssl rand -base64 32`), set "
        f"{var}='{new}:<new key>,{old}:<current key>' for every Konbit process and restart "
        f"them, run `konbit vault rotate` to re-wrap every account under version {new}, "
        f"then set {var}='{new}:<new key>' and restart again"
    )
