"""Settings precedence (overrides > environment > .env file > defaults), checked values, logging."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from konbit.settings import Settings, SettingsError, unknown_variables


def test_defaults_use_managed_chain_and_sqlite(tmp_path: Path) -> None:
    s = Settings.load(env_file=tmp_path / "absent.env", environ={})
    assert s.managed_chain
    assert s.effective_rpc_url == "http://127.0.0.1:8545"
    assert s.effective_database_url == "sqlite:///.konbit/konbit.db"
    assert s.effective_vault_master_key_file == Path(".konbit/vault/master.key")
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_env_file_beats_defaults_and_environment_beats_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("KONBIT_PORT=8100\nKONBIT_DATA_DIR=/srv/konbit\nKONBIT_CHAIN_PORT=9000\n")
    s = Settings.load(env_file=env_file, environ={"KONBIT_PORT": "8200"})
    assert s.port == 8200  # environment wins over .env
    assert s.data_dir == Path("/srv/konbit")  # .env wins over default
    assert s.chain_port == 9000
    assert s.effective_database_url == "sqlite:////srv/konbit/konbit.db"


def test_overrides_beat_environment(tmp_path: Path) -> None:
    s = Settings.load(
        env_file=None,
        environ={"KONBIT_PORT": "8200", "KONBIT_RPC_URL": "http://127.0.0.1:1234"},
        port=8300,
    )
    assert s.port == 8300
    assert not s.managed_chain
    assert s.effective_rpc_url == "http://127.0.0.1:1234"


def test_unrelated_and_empty_variables_are_ignored() -> None:
    s = Settings.load(env_file=None, environ={"PORT": "1", "KONBIT_PORT": "", "KONBIT_NOPE": "x"})
    assert s.port == 8000


def test_bad_value_names_the_variable_and_hides_secrets() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(
            env_file=None,
            environ={"KONBIT_PORT": "not-a-port", "KONBIT_VAULT_MASTER_KEY": "s3cr3t-key"},
        )
    assert "KONBIT_PORT" in str(err.value)
    assert "s3cr3t" not in str(err.value)


def test_secret_is_not_in_repr() -> None:
    s = Settings.load(env_file=None, environ={"KONBIT_VAULT_MASTER_KEY": "s3cr3t-key"})
    assert "s3cr3t" not in repr(s)
    assert s.vault_master_key is not None
    assert s.vault_master_key.get_secret_value() == "s3cr3t-key"


def test_an_unknown_log_level_is_refused_by_name() -> None:
    assert Settings.load(env_file=None, environ={"KONBIT_LOG_LEVEL": "debug"}).log_level == "debug"
    with pytest.raises(SettingsError) as err:
        Settings.load(env_file=None, environ={"KONBIT_LOG_LEVEL": "verbose"})
    assert "KONBIT_LOG_LEVEL" in str(err.value)


@pytest.mark.parametrize(("level", "quieted"), [("INFO", True), ("debug", False)])
def test_logs_quiet_chatty_libraries_unless_debugging(level: str, quieted: bool) -> None:
    # A fresh interpreter: logging's configuration is process-wide.
    script = (
        "import logging; from konbit import logs\n"
        f"logs.configure({level!r}, 'web 1')\n"
        "logging.getLogger('httpx').info('HTTP Request: GET /healthz')\n"
        "logging.getLogger('konbit.demo').info('demo: onboarding')\n"
    )
    err = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stderr
    assert "INFO konbit.demo [web 1]: demo: onboarding" in err
    assert ("HTTP Request" in err) is not quieted


def test_a_mistyped_variable_is_named_with_the_setting_likely_meant(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("KONBIT_LOG_LEVL=debug\n")
    environ = {
        "KONBIT_CHAIN_URL": "http://127.0.0.1:9545",  # the setting is KONBIT_RPC_URL
        "KONBIT_ANVIL_BIN": "/usr/local/bin/anvil",  # read by konbit.chain.local
        "KONBIT_PORT": "8001",
        "KONBIT_FROBNICATE": "1",
        "PATH": "/usr/bin",
    }
    assert unknown_variables(env_file=env, environ=environ) == [
        "KONBIT_CHAIN_URL is not a Konbit setting and is ignored; did you mean KONBIT_RPC_URL?",
        "KONBIT_FROBNICATE is not a Konbit setting and is ignored",
        "KONBIT_LOG_LEVL is not a Konbit setting and is ignored; did you mean KONBIT_LOG_LEVEL?",
    ]
    assert unknown_variables(env_file=None, environ={"KONBIT_PORT": "1"}) == []


def test_the_command_line_warns_of_a_mistyped_variable(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KONBIT_")},
        "KONBIT_DATA_DIR": str(tmp_path),
        "KONBIT_CHAIN_URL": "http://127.0.0.1:9545",
    }
    done = subprocess.run(
        [sys.executable, "-m", "konbit.cli", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        "konbit: warning: KONBIT_CHAIN_URL is not a Konbit setting and is ignored;"
        " did you mean KONBIT_RPC_URL?" in done.stderr
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (None, "http://127.0.0.1:8545"),
        ("http://127.0.0.1:8645", "http://127.0.0.1:8645"),
        ("https://eth-mainnet.example.org/v2/SECRETKEY", "https://eth-mainnet.example.org/..."),
        ("https://user:SECRETKEY@rpc.example.org:8443", "https://rpc.example.org:8443"),
        ("https://rpc.example.org/?apikey=SECRETKEY", "https://rpc.example.org/..."),
    ],
)
def test_the_node_url_in_messages_never_shows_a_key(url: str | None, shown: str) -> None:
    """Providers put API keys in the path, the user part or the query of the node's URL;
    messages and logs show scheme, host and port only."""
    s = Settings.load(env_file=None, environ={}, **({"rpc_url": url} if url else {}))
    assert s.shown_rpc_url == shown
    assert "SECRETKEY" not in s.shown_rpc_url


@pytest.mark.parametrize(
    ("environ", "on_loop"),
    [
        ({}, True),  # SQLite, a local file
        ({"KONBIT_DATABASE_URL": "postgresql+psycopg://konbit@127.0.0.1/konbit"}, False),
        ({"KONBIT_READS_ON_LOOP": "false"}, False),
        (
            {
                "KONBIT_DATABASE_URL": "postgresql+psycopg://konbit@127.0.0.1/konbit",
                "KONBIT_READS_ON_LOOP": "true",
            },
            True,
        ),
    ],
)
def test_reads_run_on_the_loop_on_sqlite_unless_told(
    environ: dict[str, str], on_loop: bool
) -> None:
    assert Settings.load(env_file=None, environ=environ).runs_reads_on_loop is on_loop
