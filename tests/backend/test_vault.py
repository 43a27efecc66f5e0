"""The custodial vault on SQLite and PostgreSQL: sealing, signing on Anvil, rotation, export."""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select
from web3 import Web3

from konbit.db.migrate import upgrade
from konbit.settings import Settings
from konbit.vault import (
    DecryptionError,
    MasterKeyError,
    UnknownAccountError,
    Vault,
    VaultError,
)
from konbit.vault import keyring as keyring_module
from konbit.vault.crypto import InvalidCiphertext, data_key_aad, unseal
from konbit.vault.models import CustodialAccount

COLUMNS = "address, key_version, key_nonce, key_ciphertext, data_key_nonce, wrapped_data_key"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(env_file=None, environ={}, data_dir=tmp_path / "data")


@pytest.fixture
def vault(engine: Engine, settings: Settings) -> Vault:
    upgrade(engine)
    return Vault(engine, settings)


def key_file(settings: Settings) -> Path:
    return settings.effective_vault_master_key_file


def rows(engine: Engine) -> list[dict[str, Any]]:
    """Every row of the table as the driver returns it, bytes as bytes."""
    with engine.connect() as conn:
        result = conn.execute(text("SELECT * FROM custodial_account ORDER BY id"))
        return [
            {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row._mapping.items()}
            for row in result
        ]


def data_key(row: dict[str, Any], master: bytes) -> bytes:
    aad = data_key_aad(row["address"], row["key_version"])
    return unseal(master, row["data_key_nonce"], row["wrapped_data_key"], aad)


def private_key(vault: Vault, address: str) -> bytes:
    with vault.signer(address) as account:
        return bytes(account.key)


def spellings(secret: bytes) -> list[str]:
    """Ways a leaked key could show up in text."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        repr(secret)[2:-1],
    ]


def recovers(vault: Vault, address: str) -> bool:
    tx = {"to": address, "value": 0, "gas": 21000, "gasPrice": 1, "nonce": 0, "chainId": 31337}
    signed = vault.sign_transaction(address, tx)
    return Account.recover_transaction(signed.raw_transaction) == address


def test_migration_matches_the_model(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [d for d in diffs if "custodial_account" in repr(d)] == []


def test_accounts_are_created_listed_and_sign(vault: Vault, settings: Settings) -> None:
    assert key_file(settings).is_file()
    coop = vault.create_account("cooperative", label="coop-7")
    farmer = vault.create_account("farmer")
    assert Web3.is_checksum_address(coop) and coop != farmer
    listed = {a.address: a for a in vault.accounts()}
    assert (listed[coop].kind, listed[coop].label, listed[coop].key_version) == (
        "cooperative",
        "coop-7",
        1,
    )
    assert vault.account(farmer.lower()).address == farmer
    assert recovers(vault, coop) and recovers(vault, farmer)
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}],
            "Ping": [{"name": "n", "type": "uint256"}],
        },
        "primaryType": "Ping",
        "domain": {"name": "Konbit"},
        "message": {"n": 7},
    }
    signed = vault.sign_typed_data(farmer, typed)
    message = encode_typed_data(full_message=typed)
    assert Account.recover_message(message, signature=signed.signature) == farmer


def test_bad_input_is_refused(vault: Vault) -> None:
    with pytest.raises(VaultError, match="kind"):
        vault.create_account("Farmer Jean")
    with pytest.raises(VaultError, match="64"):
        vault.create_account("farmer", label="x" * 65)
    with pytest.raises(UnknownAccountError, match="0x0000000000000000000000000000000000000001"):
        vault.sign_transaction("0x" + "00" * 19 + "01", {})
    with pytest.raises(VaultError, match="not an Ethereum address"):
        vault.account("0x1234")


def test_stored_rows_hold_no_key_material(vault: Vault, engine: Engine, settings: Settings) -> None:
    addresses = [vault.create_account("farmer") for _ in range(3)]
    master = keyring_module.read_file(key_file(settings)).key(1)
    stored = rows(engine)
    blob = b"".join(
        v if isinstance(v, bytes) else str(v).encode() for row in stored for v in row.values()
    )
    assert {row["address"] for row in stored} == set(addresses)
    for row in stored:
        for secret in (private_key(vault, row["address"]), data_key(row, master), master):
            assert secret not in blob
            assert all(s.encode() not in blob for s in spellings(secret))
        assert len(row["key_ciphertext"]) == 32 + 16 and len(row["wrapped_data_key"]) == 32 + 16


def test_swapped_or_altered_rows_do_not_decrypt(vault: Vault, engine: Engine) -> None:
    a, b = vault.create_account("farmer"), vault.create_account("farmer")
    with engine.begin() as conn:
        (row_a, row_b) = conn.execute(
            text(f"SELECT {COLUMNS} FROM custodial_account ORDER BY id")
        ).all()
        for col in ("data_key_nonce", "wrapped_data_key"):
            conn.execute(
                text(f"UPDATE custodial_account SET {col} = :v WHERE address = :a"),
                {"v": getattr(row_b, col), "a": a},
            )
    with pytest.raises(DecryptionError, match=f"data key of {a}.*master key version 1"):
        vault.sign_transaction(a, {})
    with engine.begin() as conn:
        for col in ("data_key_nonce", "wrapped_data_key"):
            conn.execute(
                text(f"UPDATE custodial_account SET {col} = :v WHERE address = :a"),
                {"v": getattr(row_a, col), "a": a},
            )
        for col in ("key_nonce", "key_ciphertext"):
            conn.execute(
                text(f"UPDATE custodial_account SET {col} = :v WHERE address = :a"),
                {"v": getattr(row_b, col), "a": a},
            )
    with pytest.raises(DecryptionError, match=f"private key of {a}"):
        vault.sign_transaction(a, {})
    assert recovers(vault, b)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE custodial_account SET key_version = 7 WHERE address = :a"), {"a": b}
        )
    with pytest.raises(MasterKeyError, match="version 7 is not in the keyring"):
        vault.sign_transaction(b, {})


def test_rotation_then_every_account_signs_on_anvil(
    vault: Vault, engine: Engine, settings: Settings, w3: Web3
) -> None:
    addresses = [vault.create_account(kind) for kind in ("farmer", "farmer", "cooperative")]
    old_master = keyring_module.read_file(key_file(settings)).key(1)
    seen: list[tuple[int, int]] = []

    report = vault.rotate(batch_size=2, progress=lambda done, total: seen.append((done, total)))

    assert (report.to_version, report.rewrapped, report.resumed) == (2, 3, False)
    assert report.dropped_versions == [1] and seen == [(2, 3), (3, 3)]
    ring = keyring_module.read_file(key_file(settings))
    assert (ring.current, ring.versions) == (2, [2])
    for row in rows(engine):
        assert row["key_version"] == 2
        for version in (1, 2):  # the old master key opens no re-wrapped data key
            with pytest.raises(InvalidCiphertext):
                unseal(
                    old_master,
                    row["data_key_nonce"],
                    row["wrapped_data_key"],
                    data_key_aad(row["address"], version),
                )
        assert data_key(row, ring.key(2))

    funder = w3.eth.accounts[0]
    for address in addresses:
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": funder, "to": address, "value": 10**17})
        )
    for address in addresses:
        tx = {
            "to": funder,
            "value": 12345,
            "gas": 21000,
            "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": w3.eth.get_transaction_count(address),
            "chainId": w3.eth.chain_id,
        }
        signed = vault.sign_transaction(address, tx)
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        assert receipt["status"] == 1
        assert receipt["from"] == address
        assert w3.eth.get_transaction(receipt["transactionHash"])["from"] == address


def test_interrupted_rotation_still_signs_and_resumes(
    vault: Vault, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses = [vault.create_account("farmer") for _ in range(6)]
    real_batch = Vault._rewrap_batch
    calls = 0

    def power_cut_on_second_batch(self: Vault, *args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt("power cut")
        return real_batch(self, *args, **kwargs)

    monkeypatch.setattr(Vault, "_rewrap_batch", power_cut_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        vault.rotate(batch_size=3)
    monkeypatch.undo()

    assert sorted(r["key_version"] for r in rows(engine)) == [1, 1, 1, 2, 2, 2]
    ring = keyring_module.read_file(key_file(settings))
    assert (ring.current, ring.versions) == (2, [1, 2])
    restarted = Vault(engine, settings)  # as a new process would
    assert all(recovers(restarted, a) for a in addresses)
    assert restarted.create_account("farmer")  # new accounts go under version 2

    report = restarted.rotate(batch_size=3)
    assert (report.resumed, report.rewrapped, report.to_version) == (True, 3, 2)
    assert report.dropped_versions == [1]
    assert {r["key_version"] for r in rows(engine)} == {2}
    assert keyring_module.read_file(key_file(settings)).versions == [2]
    assert all(recovers(restarted, a) for a in addresses)


def test_account_created_during_a_rotation_elsewhere_is_moved(
    vault: Vault, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation that runs between this process's keyring read and its commit."""
    vault.create_account("farmer")
    other_process = Vault(engine, settings)
    real_create = Account.create

    def create_while_rotating() -> Any:
        monkeypatch.setattr(Account, "create", real_create)
        other_process.rotate()  # moves every row to v2 and drops v1 from the file
        return real_create()

    monkeypatch.setattr(Account, "create", create_while_rotating)
    address = vault.create_account("farmer")

    assert keyring_module.read_file(key_file(settings)).versions == [2]
    assert {r["key_version"] for r in rows(engine)} == {2}
    assert recovers(Vault(engine, settings), address)


def test_export_keystore_decrypts_to_the_same_address(vault: Vault) -> None:
    address = vault.create_account("farmer")
    keystore = vault.export_keystore(address, "correct horse battery")
    assert keystore["version"] == 3
    assert Account.from_key(Account.decrypt(keystore, "correct horse battery")).address == address
    with pytest.raises(VaultError, match="at least 8"):
        vault.export_keystore(address, "short")


def test_signing_is_fast(vault: Vault) -> None:
    address = vault.create_account("operator")
    tx = {"to": address, "value": 0, "gas": 21000, "gasPrice": 1, "chainId": 31337}
    started = time.perf_counter()
    for nonce in range(100):
        vault.sign_transaction(address, {**tx, "nonce": nonce})
    assert (time.perf_counter() - started) / 100 < 0.05  # no KDF per signature


def test_env_master_key(engine: Engine, tmp_path: Path) -> None:
    upgrade(engine)
    old, new = b"\x01" * 32, b"\x02" * 32

    def env_vault(value: str) -> Vault:
        environ = {"KONBIT_VAULT_MASTER_KEY": value, "KONBIT_DATA_DIR": str(tmp_path / "d")}
        return Vault(engine, Settings.load(env_file=None, environ=environ))

    b64 = base64.b64encode
    vault = env_vault(b64(old).decode())
    address = vault.create_account("farmer")
    assert recovers(vault, address) and vault.key_version == 1
    assert not (tmp_path / "d").exists()  # no key file when the key comes from the environment
    with pytest.raises(MasterKeyError, match="2:<new key>,1:<current key>") as refused:
        vault.rotate()
    assert b64(old).decode() not in str(refused.value)

    with pytest.raises(DecryptionError, match="master key version 1") as wrong:
        env_vault(b64(b"\x09" * 32).decode()).sign_transaction(address, {})
    assert all(s not in str(wrong.value) for s in spellings(b"\x09" * 32) + spellings(old))

    both = env_vault(f"2:{b64(new).decode()}, 1:{b64(old).decode()}")
    report = both.rotate()
    assert (report.rewrapped, report.dropped_versions, report.remaining_versions) == (1, [], [1, 2])
    assert recovers(env_vault(f"2:{b64(new).decode()}"), address)
    with pytest.raises(MasterKeyError, match="version 2 is not in the keyring"):
        env_vault(b64(old).decode()).sign_transaction(address, {})


@pytest.mark.parametrize(
    "value", ["not base64 at all!", base64.b64encode(b"short").decode(), "0:" + "A" * 44]
)
def test_malformed_env_key_is_refused_without_echo(engine: Engine, value: str) -> None:
    upgrade(engine)
    settings = Settings.load(env_file=None, environ={"KONBIT_VAULT_MASTER_KEY": value})
    with pytest.raises(MasterKeyError, match="KONBIT_VAULT_MASTER_KEY") as err:
        Vault(engine, settings)
    assert value not in str(err.value)


def test_no_key_material_in_reprs_errors_or_logs(
    vault: Vault, engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = [repr(vault)]
    addresses = [vault.create_account("farmer") for _ in range(2)]
    ring_before = keyring_module.read_file(key_file(settings))
    secrets = [ring_before.key(1)]
    secrets += [data_key(row, ring_before.key(1)) for row in rows(engine)]
    secrets += [private_key(vault, a) for a in addresses]
    for address in addresses:
        tx = {"to": address, "gas": 21000, "gasPrice": 1, "nonce": 0, "chainId": 1}
        vault.sign_transaction(address, tx)
    vault.rotate()
    ring = keyring_module.read_file(key_file(settings))
    vault.export_keystore(addresses[0], "a long passphrase")
    texts += [repr(vault), repr(ring), str(ring), repr(vault.accounts())]
    texts.append(str(vault.account(addresses[0])))
    with Session(engine) as session:
        texts += [repr(row) for row in session.exec(select(CustodialAccount))]
    assert "key_ciphertext" not in texts[-1] and addresses[0] in " ".join(texts)

    with engine.begin() as conn:  # a wrong data key: the error must not show it
        conn.execute(
            text("UPDATE custodial_account SET wrapped_data_key = :v WHERE address = :a"),
            {"v": b"\x00" * 48, "a": addresses[1]},
        )
    for call in (
        lambda: vault.sign_transaction(addresses[1], {}),
        lambda: vault.rotate(),  # adds version 3, then stops at the damaged row
        lambda: vault.export_keystore(addresses[1], "a long passphrase"),
    ):
        with pytest.raises(VaultError) as err:
            call()
        texts += [str(err.value), repr(err.value)]
    texts.append(caplog.text)
    secrets += keyring_module.read_file(key_file(settings)).keys.values()  # versions 2 and 3
    joined = "\n".join(texts)
    assert "exported the key" in joined and "master key version 2" in joined
    for secret in secrets:
        assert all(s not in joined for s in spellings(secret))
