"""Suite-wide guards and real parts (Anvil, SQLite, PostgreSQL, a live API server)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from brownie._config import CONFIG as BROWNIE_CONFIG
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from web3 import Web3

from konbit.chain.local import LocalChain, free_port
from konbit.db.engine import make_engine
from konbit.paths import PROJECT_ROOT


def _project_tools_on_path() -> None:
    """Plain `pytest` from a fresh shell: the project's node tools (anvil, the solc shim)
    and the venv's commands come first on PATH, as the Makefile puts them."""
    wanted = [
        PROJECT_ROOT / "scripts" / "solc-shim",
        PROJECT_ROOT / "node_modules" / ".bin",
        PROJECT_ROOT / ".venv" / "bin",
    ]
    current = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(
        [str(p) for p in wanted if str(p) not in current] + current
    )
    os.environ.setdefault("SOLCX_BINARY_PATH", str(PROJECT_ROOT / "scripts" / "solc-shim"))
    if not (PROJECT_ROOT / "node_modules" / ".bin" / "anvil").exists():
        raise pytest.UsageError("anvil is missing: run `make setup` (or `npm ci`) first")


_project_tools_on_path()

# Brownie launches its own Anvil for the contract tests. Keep it off 8545 (the demo
# chain's port) and give it mainnet's 30M block gas limit. Set here because brownie
# 1.22 cannot read `networks.development.cmd_settings` from brownie-config.yaml.
BROWNIE_CONFIG.networks["development"].setdefault("cmd_settings", {}).update(
    port=18545, gas_limit=30_000_000, accounts=10, base_fee=0
)
# No old states on disk (see konbit.chain.local.LocalChain.command): brownie's CLI flags
# have no key for it, and the command is split on spaces.
BROWNIE_CONFIG.networks["development"]["cmd"] = "anvil --max-persisted-states 0"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_loopback(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0]
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConnectionRefusedError(f"tests may only reach 127.0.0.1, not {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_loopback(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_loopback(self, address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Any:
    """No test reaches the network beyond the loopback interface."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop brownie's Anvil before pytest prints its summary, so the summary ends the run."""
    from brownie import network
    from brownie.network import rpc

    if network.is_connected():
        # Only an Anvil this run launched: brownie "attaches" to one already listening
        # (another run's) and would kill that one too.
        network.disconnect(kill_rpc=rpc.is_child())


PG_SCRIPT = PROJECT_ROOT / "scripts" / "throwaway-postgres.sh"


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalChain]:
    """One Anvil node for the session, on a free port, with its state in a temp folder."""
    chain = LocalChain(tmp_path_factory.mktemp("anvil"), port=free_port())
    chain.start()
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
def w3(anvil: LocalChain) -> Web3:
    web3 = Web3(Web3.HTTPProvider(anvil.url))
    assert web3.is_connected()
    return web3


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server: ``KONBIT_TEST_POSTGRES_URL``, or a throwaway one.

    Skips only when neither is available and this is not CI: in CI the PostgreSQL
    cases must run.
    """
    url = os.environ.get("KONBIT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    folder = Path("/tmp") / f"konbit-test-pg-{uuid.uuid4().hex[:8]}"
    started = subprocess.run(
        ["bash", str(PG_SCRIPT), "start", str(folder), str(free_port())],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {started.stderr.strip()}")
        pytest.skip(f"no PostgreSQL here: {started.stderr.strip()}")
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)  # each run's cluster is hundreds of MB


def _fresh_postgres_database(server_url: str) -> str:
    """A new, empty database on the server, so tests never see each other's rows."""
    name = f"konbit_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: a SQLite file and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'konbit.db'}"
    server = request.getfixturevalue("postgres_server")
    return _fresh_postgres_database(server)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


class LiveServer:
    """The real app served by uvicorn on a free port, in a thread, for real HTTP."""

    def __init__(self, settings: Any, *, background: bool = True) -> None:
        import uvicorn

        from konbit.server import create_app

        self.url = f"http://127.0.0.1:{settings.port}"
        config = uvicorn.Config(
            create_app(settings, background=background),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="session")
def live_server() -> type[LiveServer]:
    """The LiveServer class (tests/contracts has its own `conftest` module, so no import)."""
    return LiveServer
