"""``konbit vault new | list | rotate | export`` in real subprocesses, on SQLite."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from konbit import cli
from konbit.vault import keyring as keyring_module


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONBIT_")}
    env["KONBIT_DATA_DIR"] = str(tmp_path / "data")
    env["KONBIT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    return env


def konbit(tmp_path: Path, environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "konbit.cli", *args],
        cwd=tmp_path,  # away from the project's .env
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_vault_cli_end_to_end(tmp_path: Path, environ: dict[str, str]) -> None:
    outputs: list[str] = []

    def ok(*args: str) -> str:
        done = konbit(tmp_path, environ, *args)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == 0, done.stderr
        return done.stdout

    ok("db", "upgrade")
    coop = ok("vault", "new", "--kind", "cooperative", "--label", "coop-1").strip()
    farmers = [ok("vault", "new").strip() for _ in range(2)]
    listing = ok("vault", "list")
    assert f"{coop}  cooperative  v1" in listing and "coop-1" in listing
    assert all(f"{f}  farmer" in listing for f in farmers) and "3 accounts" in listing
    key_file = tmp_path / "data" / "vault" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first_master = keyring_module.read_file(key_file).key(1)

    rotated = ok("vault", "rotate", "--batch-size", "2")
    assert "re-wrapped 2/3" in rotated and "re-wrapped 3/3" in rotated
    assert "all under master key v2" in rotated and "dropped master key versions [1]" in rotated
    assert ok("vault", "list").count(" v2 ") == 3
    second_master = keyring_module.read_file(key_file).key(2)

    (tmp_path / "pass").write_text("a long passphrase\n")
    ok("vault", "export", farmers[0], "--passphrase-file", "pass", "--out", "farmer.json")
    out = tmp_path / "farmer.json"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = Account.decrypt(json.loads(out.read_text()), "a long passphrase")
    assert Account.from_key(key).address == farmers[0]

    again = konbit(tmp_path, environ, "vault", "export", farmers[0], "--passphrase-file", "pass")
    assert Account.decrypt(json.loads(again.stdout), "a long passphrase") == key
    outputs += [again.stdout, again.stderr]
    for args, message in [
        (("--passphrase-file", "pass", "--out", "farmer.json"), "exists; not overwriting"),
        (("--passphrase-file", "missing"), "cannot read missing"),
    ]:
        refused = konbit(tmp_path, environ, "vault", "export", farmers[0], *args)
        assert (refused.returncode, refused.stdout) == (1, "")
        assert message in refused.stderr
    unknown = konbit(tmp_path, environ, "vault", "export", "0x" + "00" * 20)
    assert unknown.returncode == 1 and "no custodial account" in unknown.stderr

    key_file.chmod(0o644)
    refused = konbit(tmp_path, environ, "vault", "list")
    assert refused.returncode == 1 and f"chmod 600 {key_file}" in refused.stderr

    text = "\n".join(outputs)
    for secret in (first_master, second_master, bytes(key)):
        assert secret.hex() not in text and base64.b64encode(secret).decode() not in text


def test_export_prompts_twice(
    tmp_path: Path,
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In-process, to answer getpass; the passphrase never comes from argv."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["db", "upgrade"]) == 0
    assert cli.main(["vault", "new", "--kind", "operator"]) == 0
    address = capsys.readouterr().out.split()[-1]

    answers = iter(["first passphrase", "second passphrase"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert cli.main(["vault", "export", address]) == 1
    assert "the passphrases differ" in capsys.readouterr().err

    answers = iter(["same passphrase", "same passphrase"])
    assert cli.main(["vault", "export", address]) == 0
    keystore = json.loads(capsys.readouterr().out)
    assert Account.from_key(Account.decrypt(keystore, "same passphrase")).address == address
    with pytest.raises(SystemExit):  # not taken as an abbreviation of --passphrase-file
        cli.main(["vault", "export", address, "--passphrase", "in argv"])
