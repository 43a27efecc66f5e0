"""Real parts for backend tests: an Anvil node, SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from web3 import Web3

from konbit.chain.local import LocalChain, free_port
from konbit.db.engine import make_engine
from konbit.paths import PROJECT_ROOT

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
